#include <gtest/gtest.h>

#include <string>

#include "waypoint/sip/base64url.hpp"

namespace waypoint::sip {
namespace {

std::string encode(std::string_view text) {
  return base64url(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

TEST(Base64urlTest, EncodesWithoutPaddingInTheUrlAlphabet) {
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg");
  EXPECT_EQ(encode("fo"), "Zm8");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("\xfb\xff"), "-_8");
}

TEST(Base64urlTest, DecodesWhatItEncodes) {
  const std::string bytes("\x00\x01\xfe\xff waypoint", 13);
  for (std::size_t size = 0; size <= bytes.size(); ++size) {
    const auto decoded = decodeBase64url(encode(bytes.substr(0, size)));
    ASSERT_TRUE(decoded) << size;
    EXPECT_EQ(std::string(decoded->begin(), decoded->end()), bytes.substr(0, size));
  }
}

TEST(Base64urlTest, RefusesOtherCharactersPaddingAndLooseBits) {
  EXPECT_FALSE(decodeBase64url("Zg=="));
  EXPECT_FALSE(decodeBase64url("Zm+v"));
  EXPECT_FALSE(decodeBase64url("Z"));
  EXPECT_FALSE(decodeBase64url("Zh"));  // the low bits of the last character must be zero
}

}  // namespace
}  // namespace waypoint::sip
