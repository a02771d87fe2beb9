#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "waypoint/auth/user_store.hpp"
#include "waypoint/config/yaml_reader.hpp"

namespace waypoint::auth {
namespace {

const std::string kMd5(32, 'a');
const std::string kSha(64, 'b');

class UserFileTest : public ::testing::Test {
 protected:
  const std::string& write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  // The message of the ConfigError that loading `text` throws, without the file name.
  std::string errorFor(const std::string& text) {
    try {
      UserFile::load(write(text));
    } catch (const config::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(path_ + ":", 0), 0u) << what;
      return what.substr(path_.size() + 1);
    }
    ADD_FAILURE() << "no ConfigError for:\n" << text;
    return {};
  }
  std::optional<UserRecord> lookup(FileUserStore& store, std::string_view realm,
                                   std::string_view user) {
    std::optional<UserRecord> answer;
    bool called = false;
    store.lookup(realm, user, [&](std::optional<UserRecord> record) {
      called = true;
      answer = std::move(record);
    });
    EXPECT_TRUE(called) << "the file store answers at once";
    return answer;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("waypoint-users-test-" + std::to_string(::getpid()) + ".txt"))
                          .string();
};

TEST_F(UserFileTest, LoadsGoodLinesCommentsAndBlankLines) {
  const auto users =
      UserFile::load(write("# users\n\n"
                           "alice example.com md5=" +
                           std::string(32, 'A') + " sha-256=" + kSha +
                           "  # the boss\r\n"
                           "\tbob example.com sha-256=" +
                           kSha +
                           " register_for=sip:BOB2@Example.COM,sips:b@h.example:5061\n"
                           "carol other.org md5=" +
                           kMd5 + "\n"));
  ASSERT_EQ(users.size(), 3u);
  const UserRecord& alice = users.at("alice@example.com");
  EXPECT_EQ(alice.user, "alice");
  EXPECT_EQ(alice.realm, "example.com");
  EXPECT_EQ(alice.ha1Md5, kMd5);  // lower-cased
  EXPECT_EQ(alice.ha1Sha256, kSha);
  EXPECT_TRUE(alice.mayRegister.empty());
  const UserRecord& bob = users.at("bob@example.com");
  EXPECT_EQ(bob.ha1Md5, "");
  EXPECT_EQ(bob.ha1For(Algorithm::sha256), kSha);
  EXPECT_EQ(bob.mayRegister,
            (std::vector<std::string>{"sip:BOB2@example.com", "sip:b@h.example:5061"}));
  EXPECT_EQ(users.at("carol@other.org").ha1Sha256, "");
}

TEST_F(UserFileTest, EachErrorNamesItsLineAndColumn) {
  const std::string md5 = "md5=" + kMd5;  // columns 7 to 42 after "bob r "
  const std::string notHex = "needs 32 hex digits, the HA1 that --hash-password prints";
  const std::string notAor = "' is not an address-of-record sip:user@host";
  const std::string unknown = "expected md5=HEX, sha-256=HEX or register_for=AOR,..., not '";
  const std::pair<std::string, std::string> cases[] = {
      {"bob", "2:4: a realm is needed after the user"},
      {"bob example.com",
       "2:16: md5= or sha-256= is needed (waypointd --hash-password USER REALM prints them)"},
      {"bob r md5=abc", "2:7: md5= " + notHex},
      {"bob r md5=" + std::string(31, 'a') + "g", "2:7: md5= " + notHex},
      {"bob r  sha-256=" + kMd5,
       "2:8: sha-256= needs 64 hex digits, the HA1 that "
       "--hash-password prints"},
      {"bob r " + md5 + " sha1=x", "2:44: " + unknown + "sha1=x'"},
      {"bob r " + md5 + " password", "2:44: " + unknown + "password'"},
      {"bob r " + md5 + " " + md5, "2:44: md5= is given twice"},
      {"bob r " + md5 + " register_for=sip:a@h,tel:123", "2:65: register_for: 'tel:123" + notAor},
      {"bob r " + md5 + " register_for=sip:h", "2:57: register_for: 'sip:h" + notAor},
      {"bob r " + md5 + " register_for=sip:a@h;x=1", "2:57: register_for: 'sip:a@h;x=1" + notAor},
      {"bob r " + md5 + " register_for=", "2:57: register_for: '" + notAor},
  };
  for (const auto& [line, error] : cases) {
    EXPECT_EQ(errorFor("alice example.com " + md5 + "\n" + line + "\n"), error) << line;
  }
}

TEST_F(UserFileTest, RefusesADuplicateUser) {
  EXPECT_EQ(errorFor("alice example.com md5=" + kMd5 +
                     "\n# again\n  alice example.com sha-256=" + kSha + "\n"),
            "3:3: user alice in realm example.com is already defined on line 1");
}

TEST_F(UserFileTest, SameUserInAnotherRealmIsAnotherUser) {
  EXPECT_EQ(
      UserFile::load(write("alice a.example md5=" + kMd5 + "\nalice b.example md5=" + kMd5 + "\n"))
          .size(),
      2u);
}

TEST_F(UserFileTest, UnreadableFileIsAConfigError) {
  EXPECT_THROW(UserFile::load(path_ + ".missing"), config::ConfigError);
}

TEST_F(UserFileTest, LineLoadsBackWithTheHashesOfThePassword) {
  const std::string line = UserFile::line("alice", "example.com", "s3cret");
  EXPECT_EQ(line, "alice example.com md5=" + ha1(Algorithm::md5, "alice", "example.com", "s3cret") +
                      " sha-256=" + ha1(Algorithm::sha256, "alice", "example.com", "s3cret"));
  const auto users = UserFile::load(write(line + "\n"));
  EXPECT_EQ(users.at("alice@example.com").ha1Sha256,
            ha1(Algorithm::sha256, "alice", "example.com", "s3cret"));
}

TEST_F(UserFileTest, LineRefusesNamesTheFileCannotHold) {
  EXPECT_THROW(UserFile::line("al ice", "example.com", "p"), std::invalid_argument);
  EXPECT_THROW(UserFile::line("alice", "", "p"), std::invalid_argument);
  EXPECT_THROW(UserFile::line("#alice", "example.com", "p"), std::invalid_argument);
}

TEST_F(UserFileTest, StoreAnswersLookupsAtOnce) {
  FileUserStore store(write("alice example.com md5=" + kMd5 + "\n"));
  EXPECT_EQ(store.size(), 1u);
  const auto alice = lookup(store, "example.com", "alice");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->ha1Md5, kMd5);
  EXPECT_FALSE(lookup(store, "example.com", "bob"));
  EXPECT_FALSE(lookup(store, "other.org", "alice"));
}

TEST_F(UserFileTest, StoreDoesNotConfuseNamesWithAnAtSign) {
  FileUserStore store(write("a@b c md5=" + kMd5 + "\n"));
  EXPECT_TRUE(lookup(store, "c", "a@b"));
  EXPECT_FALSE(lookup(store, "b@c", "a"));
}

TEST_F(UserFileTest, ReloadReadsTheNewUsersAndKeepsTheOldOnesOnError) {
  FileUserStore store(write("alice example.com md5=" + kMd5 + "\n"));
  std::string why;
  write("alice example.com md5=" + kMd5 + "\nbob example.com sha-256=" + kSha + "\n");
  EXPECT_TRUE(store.reload(why));
  EXPECT_EQ(store.size(), 2u);
  write("carol example.com md5=short\n");
  EXPECT_FALSE(store.reload(why));
  EXPECT_EQ(why, path_ + ":1:19: md5= needs 32 hex digits, the HA1 that --hash-password prints");
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(lookup(store, "example.com", "bob"));
  EXPECT_FALSE(lookup(store, "example.com", "carol"));
}

TEST_F(UserFileTest, StoreConstructorThrowsOnABadFile) {
  EXPECT_THROW(FileUserStore(write("alice\n")), config::ConfigError);
}

}  // namespace
}  // namespace waypoint::auth
