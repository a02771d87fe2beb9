#include "waypoint/app/route_secret.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "waypoint/proxy/route_token.hpp"

namespace waypoint::app {

namespace {

[[noreturn]] void failOn(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

std::string readSecret(const std::string& path, const std::string& what) {
  std::ifstream file(path);
  if (!file) failOn(path, "cannot read the " + what);
  std::stringstream text;
  text << file.rdbuf();
  std::string secret = text.str();
  secret.erase(secret.find_last_not_of(" \t\r\n") + 1);
  secret.erase(0, secret.find_first_not_of(" \t\r\n"));
  if (secret.size() < proxy::RouteTokenSigner::kMinSecretLength) {
    throw std::runtime_error(path + ": the " + what + " must be at least " +
                             std::to_string(proxy::RouteTokenSigner::kMinSecretLength) +
                             " characters long; delete the file to have a new one made");
  }
  return secret;
}

// Written to a temporary file and renamed, so a crash never leaves half a secret.
void writeSecret(const std::string& path, const std::string& secret, const std::string& what) {
  const std::string temporary = path + ".new";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) failOn(temporary, "cannot create the " + what);
  const std::string line = secret + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  const int writeErrno = errno;
  ::close(fd);
  errno = writeErrno;
  if (!written) failOn(temporary, "cannot write the " + what);
  if (::rename(temporary.c_str(), path.c_str()) != 0) failOn(path, "cannot store the secret");
}

// The configured secret, else the one in <state_dir>/<file>, made when absent.
std::string keptSecret(const Config& config, const std::string& configured, const std::string& file,
                       const std::string& what) {
  if (!configured.empty()) return configured;
  if (::mkdir(config.stateDir.c_str(), 0700) != 0 && errno != EEXIST) {
    failOn(config.stateDir, "cannot create the state directory (state_dir)");
  }
  const std::string path = config.stateDir + "/" + file;
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) failOn(path, "cannot read the " + what);
    writeSecret(path, proxy::generateRouteSecret(), what);
    spdlog::info("made a new {} in {}", what, path);
  }
  return readSecret(path, what);
}

}  // namespace

std::vector<std::string> routeSecrets(const Config& config) {
  std::vector<std::string> secrets{
      keptSecret(config, config.security.routeSecret, "route-secret", "Record-Route secret")};
  secrets.insert(secrets.end(), config.security.previousRouteSecrets.begin(),
                 config.security.previousRouteSecrets.end());
  return secrets;
}

std::string authSecret(const Config& config) {
  return keptSecret(config, config.security.authSecret, "auth-secret", "digest nonce secret");
}

}  // namespace waypoint::app
