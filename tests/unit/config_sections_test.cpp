#include "waypoint/app/config_sections.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace waypoint::app {
namespace {

class ConfigSectionsTest : public ::testing::Test {
 protected:
  ConfigSections sections(const std::string& text) {
    std::ofstream(path_) << text;
    return sectionsOf(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("waypoint-sections-test-" + std::to_string(::getpid()) + ".yaml"))
                          .string();
};

TEST_F(ConfigSectionsTest, AMappingIsOneEntryPerKeyAndRoutingAndListsStayWhole) {
  const auto found = sections(
      "listen: [ { transport: udp, address: 127.0.0.1 } ]\n"
      "registrar: { max_contacts: 5, min_expires: 30s }\n"
      "routing: { rules: [] }\n"
      "stop: {}\n");
  std::vector<std::string> names;
  for (const auto& [name, text] : found) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"listen", "registrar.max_contacts",
                                             "registrar.min_expires", "routing", "stop"}));
}

TEST_F(ConfigSectionsTest, ChangedNamesTheKeysAddedRemovedOrChanged) {
  const auto before =
      sections("limits: { tcp_idle_timeout: 600s, udp_mtu: 1300 }\nlog: { level: info }\n");
  const auto after =
      sections("limits: { tcp_idle_timeout: 300s, udp_mtu: 1300 }\nflood: { rate: 50 }\n");
  EXPECT_EQ(changedSections(before, after),
            (std::vector<std::string>{"flood.rate", "limits.tcp_idle_timeout", "log.level"}));
  EXPECT_TRUE(changedSections(after, after).empty());
}

TEST_F(ConfigSectionsTest, OnlyWhatTheDaemonAppliesLiveIsReloadable) {
  for (const char* live :
       {"routing", "flood.rate", "log.level", "registrar.max_contacts", "registrar.min_expires",
        "registrar.max_expires", "registrar.default_expires"}) {
    EXPECT_TRUE(reloadable(live)) << live;
  }
  for (const char* restart :
       {"listen", "limits.max_message_size", "limits.udp_mtu", "limits.udp_receive_buffer",
        "domains", "tls.certificate", "auth.register", "control.socket", "registrar.persistence"}) {
    EXPECT_FALSE(reloadable(restart)) << restart;
  }
  EXPECT_EQ(joinedOrNone({}), "none");
  EXPECT_EQ(joinedOrNone({"a", "b"}), "a, b");
}

}  // namespace
}  // namespace waypoint::app
