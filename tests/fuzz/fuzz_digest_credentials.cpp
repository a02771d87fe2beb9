// libFuzzer target: any bytes as the value of an Authorization or Proxy-Authorization
// header field, through the credentials parser and what the proxy does with a result
// (the nonce count, the expected response, the comparison).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "waypoint/auth/digest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace waypoint::auth;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto credentials = parseCredentials(bytes);
  if (!credentials) return 0;
  (void)nonceCount(credentials->nc);
  const auto algorithm = algorithmFromName(credentials->algorithm);
  if (!algorithm) return 0;
  const std::string expected = expectedResponse(
      *algorithm, ha1(*algorithm, credentials->username, credentials->realm, "fuzz"), *credentials,
      "REGISTER");
  (void)equalInConstantTime(expected, credentials->response);
  (void)challengeValue(*algorithm, credentials->realm, credentials->nonce, credentials->opaque,
                       true);
  return 0;
}
