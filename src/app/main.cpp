// waypointd: command line, then the daemon.

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>

#include "waypoint/app/config.hpp"
#include "waypoint/app/config_check.hpp"
#include "waypoint/app/daemon.hpp"
#include "waypoint/auth/user_store.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: waypointd -c FILE            run with the configuration FILE\n"
    "       waypointd --check-config -c FILE   validate FILE and exit\n"
    "       waypointd --hash-password USER REALM   read a password on stdin, print the\n"
    "                                              users file line for it\n"
    "       waypointd --version | --help\n"
    "Signals: SIGTERM/SIGINT stop (new requests get 503 while those in progress finish;\n"
    "a second one stops at once), SIGHUP reloads the configuration, SIGUSR1 writes the\n"
    "metrics file.\n";

// Turns the terminal's echo off while a password is typed, and back on.
class EchoOff {
 public:
  EchoOff() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

// One line of stdin without its line end ("" at end of input); on a terminal after a
// prompt on stderr, not echoed.
std::string readPassword(const char* prompt, bool terminal) {
  std::string line;
  if (terminal) {
    std::fputs(prompt, stderr);
    const EchoOff quiet;
    std::getline(std::cin, line);
    std::fputs("\n", stderr);  // the Enter that was not echoed
  } else {
    std::getline(std::cin, line);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// waypointd --hash-password USER REALM: 0 with the line printed, 2 for a refused input.
int hashPassword(const std::string& user, const std::string& realm) {
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  const std::string password = readPassword("Password: ", terminal);
  if (password.empty()) {
    std::fputs("waypointd: the password is empty\n", stderr);
    return 2;
  }
  if (terminal && readPassword("Password again: ", terminal) != password) {
    std::fputs("waypointd: the two passwords differ\n", stderr);
    return 2;
  }
  try {
    std::printf("%s\n", waypoint::auth::UserFile::line(user, realm, password).c_str());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "waypointd: %s\n", e.what());
    return 2;
  }
  return EXIT_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  std::string configPath;
  bool checkOnly = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return EXIT_SUCCESS;
    }
    if (arg == "--version" || arg == "-V") {
      std::printf("waypointd %s\n", WAYPOINT_VERSION);
      return EXIT_SUCCESS;
    }
    if (arg == "--hash-password") {
      if (i + 2 >= argc) {
        std::fprintf(stderr, "waypointd: --hash-password needs USER and REALM\n%s", kUsage);
        return 2;
      }
      return hashPassword(argv[i + 1], argv[i + 2]);
    }
    if (arg == "--check-config") {
      checkOnly = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc || argv[i + 1][0] == '\0' || argv[i + 1][0] == '-') {
        std::fprintf(stderr, "waypointd: %s needs the configuration FILE after it\n%s", arg.c_str(),
                     kUsage);
        return 2;
      }
      configPath = argv[++i];
    } else {
      std::fprintf(stderr, "waypointd: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (configPath.empty()) {
    std::fprintf(stderr, "waypointd: a configuration file is required (-c FILE)\n%s", kUsage);
    return 2;
  }
  if (checkOnly) return waypoint::app::checkConfigFile(configPath);
  try {
    const waypoint::app::Config config = waypoint::app::loadConfig(configPath);
    waypoint::app::configureLogging(config.log);
    return waypoint::app::runDaemon(config);
  } catch (const waypoint::app::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return EXIT_FAILURE;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypointd: %s\n", e.what());
    return EXIT_FAILURE;
  }
}
