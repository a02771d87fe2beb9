#include "waypoint/app/journal_log.hpp"

#include <spdlog/pattern_formatter.h>
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>

namespace waypoint::app {

namespace {

class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    const char text[] = {'<', static_cast<char>('0' + syslogPriority(message.level)), '>'};
    out.append(text, text + sizeof text);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

}  // namespace

int syslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return 2;
    case spdlog::level::err:
      return 3;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::info:
      return 6;
    default:
      return 7;
  }
}

bool isJournalStream(int fd, const char* journalStream) {
  if (journalStream == nullptr) return false;
  std::uintmax_t device = 0;
  std::uintmax_t inode = 0;
  if (std::sscanf(journalStream, "%" SCNuMAX ":%" SCNuMAX, &device, &inode) != 2) return false;
  struct stat info {};
  if (::fstat(fd, &info) != 0) return false;
  return static_cast<std::uintmax_t>(info.st_dev) == device &&
         static_cast<std::uintmax_t>(info.st_ino) == inode;
}

std::unique_ptr<spdlog::formatter> journalFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PriorityFlag>('*').set_pattern("%*%v");
  return formatter;
}

}  // namespace waypoint::app
