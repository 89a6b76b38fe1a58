#include "server/engine/blake2b.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace herald::engine {
namespace {

std::string Hex(absl::string_view data, int size) {
  return absl::BytesToHexString(Blake2b(data, size));
}

// Expected values from Python's hashlib.blake2b.
TEST(Blake2bTest, MatchesReferenceDigests) {
  EXPECT_EQ(Hex("", 4), "1271cf25");
  EXPECT_EQ(Hex("abc", 4), "63906248");
  EXPECT_EQ(Hex("create_fn", 4), "0198c5b8");
  EXPECT_EQ(Hex(std::string(200, 'x'), 4), "01d7de14");
  std::string sub = "handler/";
  for (int i = 0; i < 30; ++i) sub += "sub";
  EXPECT_EQ(Hex(sub, 4), "6af4e7a6");
  EXPECT_EQ(Hex("", 64).substr(0, 32), "786a02f742015903c6c6fd852552d272");
  EXPECT_EQ(Hex("abc", 64).substr(0, 32), "ba80a53f981c4d0d6a2797b69f12f6e9");
  EXPECT_EQ(Hex(std::string(200, 'x'), 64).substr(0, 32),
            "949668855c1886ab93efa9b12a4a9907");
}

TEST(Blake2bTest, ExactBlockBoundaries) {
  // 128 and 256 bytes: the last full block carries the final flag.
  EXPECT_EQ(Hex(std::string(128, 'a'), 4), "12cabd16");
  EXPECT_EQ(Hex(std::string(256, 'a'), 4), "c507e6f5");
  EXPECT_NE(Blake2b(std::string(128, 'a'), 4),
            Blake2b(std::string(129, 'a'), 4));
}

}  // namespace
}  // namespace herald::engine
