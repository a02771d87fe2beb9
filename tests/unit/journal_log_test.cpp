#include "waypoint/app/journal_log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdio>
#include <sstream>
#include <string>

namespace waypoint::app {
namespace {

TEST(JournalLogTest, LevelsMapToSyslogPriorities) {
  EXPECT_EQ(syslogPriority(spdlog::level::critical), 2);
  EXPECT_EQ(syslogPriority(spdlog::level::err), 3);
  EXPECT_EQ(syslogPriority(spdlog::level::warn), 4);
  EXPECT_EQ(syslogPriority(spdlog::level::info), 6);
  EXPECT_EQ(syslogPriority(spdlog::level::debug), 7);
  EXPECT_EQ(syslogPriority(spdlog::level::trace), 7);
}

TEST(JournalLogTest, JournalStreamMustNameTheDescriptorsFile) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  const int fd = fileno(file);
  struct stat info {};
  ASSERT_EQ(::fstat(fd, &info), 0);
  const std::string same = std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino);
  const std::string other = std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino + 1);
  EXPECT_TRUE(isJournalStream(fd, same.c_str()));
  EXPECT_FALSE(isJournalStream(fd, other.c_str()));  // stderr redirected elsewhere
  EXPECT_FALSE(isJournalStream(fd, nullptr));
  EXPECT_FALSE(isJournalStream(fd, "garbage"));
  std::fclose(file);
}

TEST(JournalLogTest, LinesCarryThePriorityAndNoTimestamp) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger logger("journal-test", sink);
  logger.set_formatter(journalFormatter());
  logger.set_level(spdlog::level::trace);
  logger.warn("flood: {} banned", "192.0.2.1");
  logger.info("ready");
  logger.debug("detail");
  EXPECT_EQ(out.str(), "<4>flood: 192.0.2.1 banned\n<6>ready\n<7>detail\n");
}

}  // namespace
}  // namespace waypoint::app
