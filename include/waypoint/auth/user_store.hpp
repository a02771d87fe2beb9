#pragma once
// Who may authenticate: the user store. Lookups answer through a continuation, now or
// later on the same loop (DESIGN.md principle 7), so a database or Redis back end can
// replace the file without the proxy knowing. The file back end answers at once.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "waypoint/auth/digest.hpp"

namespace waypoint::auth {

struct UserRecord {
  std::string user;
  std::string realm;
  std::string ha1Md5;     // lower-case hex; empty: MD5 not offered to this user
  std::string ha1Sha256;  // lower-case hex; empty: SHA-256 not offered to this user
  // Address-of-records besides sip:user@realm this user may register (third-party
  // registration), canonical "sip:user@host".
  std::vector<std::string> mayRegister;

  const std::string& ha1For(Algorithm algorithm) const {
    return algorithm == Algorithm::md5 ? ha1Md5 : ha1Sha256;
  }
};

class UserStore {
 public:
  using Done = std::function<void(std::optional<UserRecord>)>;  // nullopt: no such user
  virtual ~UserStore() = default;
  // `done` is called exactly once, from inside lookup() or later from the event loop.
  virtual void lookup(std::string_view realm, std::string_view user, Done done) = 0;
};

// The users file, one user per line:
//   USER REALM md5=HEX32 sha-256=HEX64 [register_for=AOR,AOR...]
// '#' starts a comment; blank lines are ignored; at least one of md5/sha-256 is needed.
// `waypointd --hash-password USER REALM` prints such a line.
class UserFile {
 public:
  using Users = std::unordered_map<std::string, UserRecord>;  // key: user + '@' + realm
  // Throws config::ConfigError ("FILE:LINE:COLUMN: what is wrong") for any bad line,
  // a duplicate user, or a file that cannot be read.
  static Users load(const std::string& path);
  // The line for the users file, from a password.
  static std::string line(std::string_view user, std::string_view realm, std::string_view password);
};

class FileUserStore final : public UserStore {
 public:
  explicit FileUserStore(std::string path);  // loads at once; throws as UserFile::load
  void lookup(std::string_view realm, std::string_view user, Done done) override;
  // Re-reads the file: true when it was read; false keeps the old users and sets `why`.
  bool reload(std::string& why);
  std::size_t size() const { return users_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UserFile::Users users_;
};

}  // namespace waypoint::auth
