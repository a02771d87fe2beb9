#pragma once
// Log lines for journald: when stderr is the journal's stream, each line starts with its
// syslog priority ("<4>" for a warning, sd-daemon(3)), so `journalctl -p warning` filters
// on it, and carries no timestamp of its own (the journal stamps every line).

#include <spdlog/common.h>

#include <memory>
#include <optional>
#include <string>

namespace spdlog {
class formatter;
}

namespace waypoint::app {

// The syslog priority of a level: critical 2, error 3, warning 4, info 6, debug/trace 7.
int syslogPriority(spdlog::level::level_enum level);

// Whether JOURNAL_STREAM ("DEVICE:INODE", set by systemd for the unit's output) names
// the file descriptor's open file, as systemd.exec(5) says to check.
bool isJournalStream(int fd, const char* journalStream);

// The formatter of journal lines: "<PRIORITY>message".
std::unique_ptr<spdlog::formatter> journalFormatter();

}  // namespace waypoint::app
