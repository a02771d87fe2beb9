#include "waypoint/auth/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <bitset>

#include "waypoint/sip/text.hpp"

namespace waypoint::auth {

namespace {

// Credentials are a few hundred bytes; anything far longer is refused before parsing so
// that the work per header stays small whatever a client sends.
constexpr std::size_t kMaxCredentialsLength = 8192;
// Bounds the duplicate check (every name against the earlier ones) to a constant factor.
constexpr std::size_t kMaxParameters = 32;

std::string lowerHex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex.push_back(kHex[data[i] >> 4]);
    hex.push_back(kHex[data[i] & 15]);
  }
  return hex;
}

bool isWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Reads the auth-param list of RFC 7616 §3.4 (RFC 3261 §25.1 LWS, token, quoted-string)
// one character at a time; every method moves forward or fails, so parsing is linear.
class ParamReader {
 public:
  explicit ParamReader(std::string_view text) : text_(text) {}

  bool atEnd() const { return pos_ == text_.size(); }
  char peek() const { return text_[pos_]; }
  void skipWhitespace() {
    while (!atEnd() && isWhitespace(peek())) ++pos_;
  }
  bool consume(char c) {
    if (atEnd() || peek() != c) return false;
    ++pos_;
    return true;
  }
  std::string_view token() {
    const std::size_t start = pos_;
    while (!atEnd() && sip::isTokenChar(peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  // A token or a quoted-string, unquoted; nullopt when neither is there.
  std::optional<std::string> value() {
    if (!consume('"')) {
      const std::string_view plain = token();
      if (plain.empty()) return std::nullopt;
      return std::string(plain);
    }
    std::string unquoted;
    while (!atEnd()) {
      const char c = text_[pos_++];
      if (c == '"') return unquoted;
      if (c == '\r' || c == '\n') return std::nullopt;
      if (c == '\\') {
        if (atEnd() || peek() == '\r' || peek() == '\n') return std::nullopt;
        unquoted.push_back(text_[pos_++]);
      } else {
        unquoted.push_back(c);
      }
    }
    return std::nullopt;  // no closing quote
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

enum Field : std::size_t { kUsername, kRealm, kNonce, kUri, kResponse, kFieldCount, kOptional };

struct KnownParameter {
  std::string_view name;
  std::string Credentials::*member;
  Field field;  // the bit of a required parameter, or kOptional
};

constexpr KnownParameter kKnownParameters[] = {
    {"username", &Credentials::username, kUsername},
    {"realm", &Credentials::realm, kRealm},
    {"nonce", &Credentials::nonce, kNonce},
    {"uri", &Credentials::uri, kUri},
    {"response", &Credentials::response, kResponse},
    {"algorithm", &Credentials::algorithm, kOptional},
    {"cnonce", &Credentials::cnonce, kOptional},
    {"opaque", &Credentials::opaque, kOptional},
    {"qop", &Credentials::qop, kOptional},
    {"nc", &Credentials::nc, kOptional},
};

// Stores a known parameter and notes the required ones; unknown ones are ignored.
void assign(Credentials& credentials, std::string_view name, std::string value,
            std::bitset<kFieldCount>& required) {
  for (const auto& known : kKnownParameters) {
    if (!sip::equalsIgnoringCase(name, known.name)) continue;
    credentials.*known.member = std::move(value);
    if (known.field != kOptional) required.set(known.field);
    return;
  }
}

bool seenBefore(const std::array<std::string_view, kMaxParameters>& names, std::size_t count,
                std::string_view name) {
  for (std::size_t i = 0; i < count; ++i) {
    if (sip::equalsIgnoringCase(names[i], name)) return true;
  }
  return false;
}

// The scheme "Digest" and the whitespace after it.
bool readScheme(ParamReader& reader) {
  reader.skipWhitespace();
  if (!sip::equalsIgnoringCase(reader.token(), "Digest")) return false;
  if (reader.atEnd() || !isWhitespace(reader.peek())) return false;
  reader.skipWhitespace();
  return true;
}

// Quotes `text` as a quoted-string (RFC 3261 §25.1), escaping '"' and '\'.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string digestHex(Algorithm algorithm, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  const EVP_MD* md = algorithm == Algorithm::md5 ? EVP_md5() : EVP_sha256();
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, md, nullptr) != 1) {
    return {};  // matches no response: nothing authenticates without the hash
  }
  return lowerHex(digest.data(), length);
}

std::string ha1(Algorithm algorithm, std::string_view user, std::string_view realm,
                std::string_view password) {
  std::string data;
  data.append(user).append(":").append(realm).append(":").append(password);
  return digestHex(algorithm, data);
}

std::optional<Credentials> parseCredentials(std::string_view headerValue) {
  if (headerValue.size() > kMaxCredentialsLength) return std::nullopt;
  ParamReader reader(headerValue);
  if (!readScheme(reader)) return std::nullopt;
  Credentials credentials;
  std::bitset<kFieldCount> required;
  std::array<std::string_view, kMaxParameters> names{};
  std::size_t count = 0;
  do {
    reader.skipWhitespace();
    const std::string_view name = reader.token();
    if (name.empty() || count == kMaxParameters || seenBefore(names, count, name)) {
      return std::nullopt;
    }
    names[count++] = name;
    reader.skipWhitespace();
    if (!reader.consume('=')) return std::nullopt;
    reader.skipWhitespace();
    auto value = reader.value();
    if (!value) return std::nullopt;
    assign(credentials, name, std::move(*value), required);
    reader.skipWhitespace();
  } while (reader.consume(','));
  if (!reader.atEnd() || !required.all() || credentials.response.empty()) return std::nullopt;
  return credentials;
}

std::optional<std::uint32_t> nonceCount(std::string_view nc) {
  if (nc.size() != 8) return std::nullopt;
  std::uint32_t value = 0;
  for (const char c : nc) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) return std::nullopt;
    value = (value << 4) | static_cast<std::uint32_t>(digit);
  }
  return value;
}

std::string expectedResponse(Algorithm algorithm, std::string_view ha1Hex,
                             const Credentials& credentials, std::string_view method) {
  // Without qop (RFC 2069) or with auth-int there is no response we accept: an empty
  // string, which parseCredentials() never lets a client send.
  if (!sip::equalsIgnoringCase(credentials.qop, "auth")) return {};
  std::string a2;
  a2.append(method).append(":").append(credentials.uri);
  std::string data(ha1Hex);
  data.append(":").append(credentials.nonce).append(":").append(credentials.nc);
  data.append(":").append(credentials.cnonce).append(":").append(credentials.qop);
  data.append(":").append(digestHex(algorithm, a2));
  return digestHex(algorithm, data);
}

bool equalInConstantTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string challengeValue(Algorithm algorithm, std::string_view realm, std::string_view nonce,
                           std::string_view opaque, bool stale) {
  std::string value = "Digest realm=" + quoted(realm) + ", nonce=" + quoted(nonce);
  if (!opaque.empty()) value += ", opaque=" + quoted(opaque);
  value.append(", algorithm=").append(algorithmName(algorithm)).append(", qop=\"auth\"");
  if (stale) value += ", stale=true";
  return value;
}

}  // namespace waypoint::auth
