#include <gtest/gtest.h>

#include <string>

#include "waypoint/auth/digest.hpp"

namespace waypoint::auth {
namespace {

// RFC 7616 §3.9.1: the example with qop=auth, for MD5 and SHA-256.
Credentials rfc7616Credentials() {
  Credentials c;
  c.username = "Mufasa";
  c.realm = "http-auth@example.org";
  c.uri = "/dir/index.html";
  c.nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
  c.cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
  c.nc = "00000001";
  c.qop = "auth";
  return c;
}

std::string rfc7616Response(Algorithm algorithm) {
  const Credentials c = rfc7616Credentials();
  return expectedResponse(algorithm, ha1(algorithm, c.username, c.realm, "Circle of Life"), c,
                          "GET");
}

TEST(DigestTest, Rfc7616ExampleMd5ResponseMatches) {
  EXPECT_EQ(rfc7616Response(Algorithm::md5), "8ca523f5e9506fed4657c9700eebdbec");
}

TEST(DigestTest, Rfc7616ExampleSha256ResponseMatches) {
  EXPECT_EQ(rfc7616Response(Algorithm::sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

TEST(DigestTest, DigestHexIsLowerCaseHexOfTheHash) {
  EXPECT_EQ(digestHex(Algorithm::md5, ""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(digestHex(Algorithm::sha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, Ha1HashesUserRealmAndPassword) {
  EXPECT_EQ(ha1(Algorithm::md5, "alice", "example.com", "secret"),
            digestHex(Algorithm::md5, "alice:example.com:secret"));
}

TEST(DigestTest, NoResponseWithoutQopAuth) {
  Credentials c = rfc7616Credentials();
  c.qop = "";
  EXPECT_EQ(expectedResponse(Algorithm::md5, "00", c, "GET"), "");
  c.qop = "auth-int";
  EXPECT_EQ(expectedResponse(Algorithm::md5, "00", c, "GET"), "");
}

TEST(DigestTest, AlgorithmNamesRoundTrip) {
  EXPECT_EQ(algorithmName(Algorithm::sha256), "SHA-256");
  EXPECT_EQ(algorithmFromName(""), Algorithm::md5);
  EXPECT_EQ(algorithmFromName("sha-256"), Algorithm::sha256);
  EXPECT_EQ(algorithmFromName("MD5-sess"), std::nullopt);
}

constexpr const char* kValid =
    "Digest username=\"alice\", realm=\"example.com\", nonce=\"abc.def\", "
    "uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", "
    "algorithm=MD5, cnonce=\"xyz\", opaque=\"op\", qop=auth, nc=0000000a";

TEST(DigestCredentialsTest, ParsesEveryParameter) {
  const auto c = parseCredentials(kValid);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->realm, "example.com");
  EXPECT_EQ(c->nonce, "abc.def");
  EXPECT_EQ(c->uri, "sip:example.com");
  EXPECT_EQ(c->response, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->algorithm, "MD5");
  EXPECT_EQ(c->cnonce, "xyz");
  EXPECT_EQ(c->opaque, "op");
  EXPECT_EQ(c->qop, "auth");
  EXPECT_EQ(c->nc, "0000000a");
}

TEST(DigestCredentialsTest, SchemeAndNamesAreCaseInsensitiveAndWhitespaceIsOptional) {
  const auto c = parseCredentials(
      "  dIgEsT USERNAME=alice,Realm = \"r\" ,\tnonce=\"n\",URI=\"u\",  response=\"x\",foo=bar");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->realm, "r");
  EXPECT_EQ(c->algorithm, "");
  EXPECT_EQ(c->qop, "");
}

TEST(DigestCredentialsTest, UnquotesBackslashEscapes) {
  const auto c = parseCredentials(
      R"(Digest username="a\"l\\i\ce", realm="a, b", nonce="n", uri="u", response="r")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, R"(a"l\ice)");
  EXPECT_EQ(c->realm, "a, b");
}

TEST(DigestCredentialsTest, RefusesADuplicatedParameter) {
  EXPECT_FALSE(parseCredentials(std::string(kValid) + ", username=\"mallory\""));
  EXPECT_FALSE(parseCredentials(std::string(kValid) + ", NC=00000001"));
  EXPECT_FALSE(parseCredentials(std::string(kValid) + ", x=1, X=2"));
}

TEST(DigestCredentialsTest, RefusesAnotherScheme) {
  EXPECT_FALSE(parseCredentials(
      "Basic username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"r\""));
  EXPECT_FALSE(parseCredentials(
      "Digestusername=\"alice\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"r\""));
}

TEST(DigestCredentialsTest, RefusesMissingRequiredParameters) {
  EXPECT_FALSE(parseCredentials("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\""));
  EXPECT_FALSE(parseCredentials(
      "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"\""));
}

TEST(DigestCredentialsTest, RefusesGarbage) {
  for (const char* garbage :
       {"", "Digest", "Digest ", "Digest ,", "Digest username",
        "Digest username=", "Digest username=\"unterminated", "Digest username=\"a\",",
        "Digest username=\"a\" realm=\"r\"", "Digest =\"a\"", "Digest username=\"a\\",
        "Digest username=\"a\rb\"", "Digest username=a b", "\"Digest\" username=a"}) {
    EXPECT_FALSE(parseCredentials(garbage)) << garbage;
  }
  EXPECT_FALSE(parseCredentials(std::string(kValid) + ", x=" + std::string(9000, 'a')));
}

TEST(DigestCredentialsTest, RefusesTooManyParameters) {
  std::string many = kValid;
  for (int i = 0; i < 40; ++i) many.append(", p").append(std::to_string(i)).append("=1");
  EXPECT_FALSE(parseCredentials(many));
}

TEST(DigestTest, NonceCountNeedsExactlyEightHexDigits) {
  EXPECT_EQ(nonceCount("00000001"), 1u);
  EXPECT_EQ(nonceCount("0000000A"), 10u);
  EXPECT_EQ(nonceCount("ffffffff"), 0xffffffffu);
  EXPECT_EQ(nonceCount("0000001"), std::nullopt);
  EXPECT_EQ(nonceCount("000000001"), std::nullopt);
  EXPECT_EQ(nonceCount("0000000g"), std::nullopt);
  EXPECT_EQ(nonceCount(""), std::nullopt);
}

TEST(DigestTest, EqualInConstantTimeComparesWholeStrings) {
  EXPECT_TRUE(equalInConstantTime("abc", "abc"));
  EXPECT_TRUE(equalInConstantTime("", ""));
  EXPECT_FALSE(equalInConstantTime("abc", "abd"));
  EXPECT_FALSE(equalInConstantTime("abc", "abcd"));
}

TEST(DigestTest, ChallengeValueHasTheDocumentedForm) {
  EXPECT_EQ(challengeValue(Algorithm::sha256, "example.com", "N1", "O1", false),
            "Digest realm=\"example.com\", nonce=\"N1\", opaque=\"O1\", algorithm=SHA-256, "
            "qop=\"auth\"");
  EXPECT_EQ(challengeValue(Algorithm::md5, "example.com", "N1", "", true),
            "Digest realm=\"example.com\", nonce=\"N1\", algorithm=MD5, qop=\"auth\", stale=true");
}

TEST(DigestTest, ChallengeValueQuotesTheRealmSoItParsesBack) {
  const std::string value = challengeValue(Algorithm::md5, "a\"b\\c", "n", "", false);
  EXPECT_EQ(value, R"(Digest realm="a\"b\\c", nonce="n", algorithm=MD5, qop="auth")");
}

}  // namespace
}  // namespace waypoint::auth
