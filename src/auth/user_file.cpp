#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "waypoint/auth/user_store.hpp"
#include "waypoint/config/yaml_reader.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::auth {

namespace {

// One whitespace-separated field of a line, with its 1-based column for errors.
struct Field {
  std::string_view text;
  std::size_t column;
};

bool isBlank(char c) { return c == ' ' || c == '\t'; }

// The fields up to a '#' that starts a field (the rest of the line is a comment).
std::vector<Field> fieldsOf(std::string_view line) {
  std::vector<Field> fields;
  std::size_t pos = 0;
  while (pos < line.size()) {
    if (isBlank(line[pos])) {
      ++pos;
      continue;
    }
    if (line[pos] == '#') break;
    const std::size_t start = pos;
    while (pos < line.size() && !isBlank(line[pos])) ++pos;
    fields.push_back({line.substr(start, pos - start), start + 1});
  }
  return fields;
}

bool isHex(std::string_view text, std::size_t length) {
  return text.size() == length && text.find_first_not_of("0123456789abcdefABCDEF") == text.npos;
}

bool startsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         sip::equalsIgnoringCase(text.substr(0, prefix.size()), prefix);
}

// "sip:user@host" (sips: as sip:, the host in lower case, a port kept), as the registrar
// keys its bindings; nullopt for anything that is not plainly such an address. Auth does
// not depend on the registrar, so this is the minimal form, without URI parameters.
std::optional<std::string> canonicalAor(std::string_view text) {
  std::string_view rest;
  if (startsWithIgnoringCase(text, "sip:")) {
    rest = text.substr(4);
  } else if (startsWithIgnoringCase(text, "sips:")) {
    rest = text.substr(5);
  } else {
    return std::nullopt;
  }
  const std::size_t at = rest.find('@');
  if (at == 0 || at == rest.npos || at + 1 == rest.size() ||
      rest.find_first_of("@;?<>\"", at + 1) != rest.npos ||
      rest.substr(0, at).find_first_of(";?<>\"") != rest.npos) {
    return std::nullopt;
  }
  return "sip:" + std::string(rest.substr(0, at)) + "@" + sip::lowerAscii(rest.substr(at + 1));
}

// Reads the lines of one users file; every error names FILE:LINE:COLUMN.
class LineParser {
 public:
  explicit LineParser(const std::string& path) : path_(path) {}

  void parse(std::string_view line, std::size_t lineNumber, UserFile::Users& users);

 private:
  [[noreturn]] void fail(std::size_t column, const std::string& message) const {
    throw config::ConfigError(path_ + ":" + std::to_string(lineNumber_) + ":" +
                              std::to_string(column) + ": " + message);
  }
  void setHex(std::string& target, const Field& field, std::string_view key,
              std::size_t length) const;
  void setRegisterFor(UserRecord& record, const Field& field, std::size_t valueOffset) const;
  void setOption(UserRecord& record, const Field& field, std::vector<std::string_view>& seen) const;

  const std::string& path_;
  std::size_t lineNumber_ = 0;
  std::unordered_map<std::string, std::size_t> lineOf_;  // key → line it was defined on
};

void LineParser::setHex(std::string& target, const Field& field, std::string_view key,
                        std::size_t length) const {
  const std::string_view value = field.text.substr(key.size() + 1);
  if (!isHex(value, length)) {
    fail(field.column, std::string(key) + "= needs " + std::to_string(length) +
                           " hex digits, the HA1 that --hash-password prints");
  }
  target = sip::lowerAscii(value);
}

void LineParser::setRegisterFor(UserRecord& record, const Field& field,
                                std::size_t valueOffset) const {
  const std::string_view list = field.text.substr(valueOffset);
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view text = list.substr(start, comma - start);
    const auto aor = canonicalAor(text);
    if (!aor) {
      fail(field.column + valueOffset + start,
           "register_for: '" + std::string(text) + "' is not an address-of-record sip:user@host");
    }
    record.mayRegister.push_back(*aor);
    if (comma == list.size()) return;
    start = comma + 1;
  }
}

void LineParser::setOption(UserRecord& record, const Field& field,
                           std::vector<std::string_view>& seen) const {
  const std::size_t equals = field.text.find('=');
  const std::string_view key = field.text.substr(0, equals);
  if (equals == field.text.npos || (key != "md5" && key != "sha-256" && key != "register_for")) {
    fail(field.column, "expected md5=HEX, sha-256=HEX or register_for=AOR,..., not '" +
                           std::string(field.text) + "'");
  }
  for (const auto& earlier : seen) {
    if (earlier == key) fail(field.column, std::string(key) + "= is given twice");
  }
  seen.push_back(key);
  if (key == "md5") setHex(record.ha1Md5, field, key, 32);
  if (key == "sha-256") setHex(record.ha1Sha256, field, key, 64);
  if (key == "register_for") setRegisterFor(record, field, equals + 1);
}

void LineParser::parse(std::string_view line, std::size_t lineNumber, UserFile::Users& users) {
  lineNumber_ = lineNumber;
  const std::vector<Field> fields = fieldsOf(line);
  if (fields.empty()) return;
  const Field& last = fields.back();
  const std::size_t end = last.column + last.text.size();  // where a missing field would go
  if (fields.size() < 2) fail(end, "a realm is needed after the user");
  UserRecord record;
  record.user = fields[0].text;
  record.realm = fields[1].text;
  std::vector<std::string_view> seen;
  for (std::size_t i = 2; i < fields.size(); ++i) setOption(record, fields[i], seen);
  if (record.ha1Md5.empty() && record.ha1Sha256.empty()) {
    fail(end, "md5= or sha-256= is needed (waypointd --hash-password USER REALM prints them)");
  }
  std::string key = record.user + "@" + record.realm;
  if (const auto earlier = lineOf_.find(key); earlier != lineOf_.end()) {
    fail(fields[0].column, "user " + record.user + " in realm " + record.realm +
                               " is already defined on line " + std::to_string(earlier->second));
  }
  lineOf_.emplace(key, lineNumber);
  users.emplace(std::move(key), std::move(record));
}

bool isWritableField(std::string_view text) {
  return !text.empty() && text.front() != '#' && text.find_first_of(" \t\r\n") == text.npos;
}

}  // namespace

UserFile::Users UserFile::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    throw config::ConfigError(path + ": cannot read the users file: " + std::strerror(errno));
  }
  Users users;
  LineParser parser(path);
  std::string line;
  for (std::size_t number = 1; std::getline(file, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    parser.parse(line, number, users);
  }
  if (file.bad()) throw config::ConfigError(path + ": cannot read the users file");
  return users;
}

std::string UserFile::line(std::string_view user, std::string_view realm,
                           std::string_view password) {
  if (!isWritableField(user) || !isWritableField(realm)) {
    throw std::invalid_argument(
        "the user and the realm must be non-empty, without white space, and not start with #");
  }
  std::string text(user);
  text.append(" ").append(realm);
  text.append(" md5=").append(ha1(Algorithm::md5, user, realm, password));
  text.append(" sha-256=").append(ha1(Algorithm::sha256, user, realm, password));
  return text;
}

FileUserStore::FileUserStore(std::string path)
    : path_(std::move(path)), users_(UserFile::load(path_)) {}

void FileUserStore::lookup(std::string_view realm, std::string_view user, Done done) {
  std::string key(user);
  key.append("@").append(realm);
  const auto found = users_.find(key);
  // The key is ambiguous when a name holds '@'; the record itself is not.
  if (found == users_.end() || found->second.user != user || found->second.realm != realm) {
    done(std::nullopt);
    return;
  }
  done(found->second);
}

bool FileUserStore::reload(std::string& why) {
  try {
    users_ = UserFile::load(path_);
    return true;
  } catch (const config::ConfigError& e) {
    why = e.what();
    return false;
  }
}

}  // namespace waypoint::auth
