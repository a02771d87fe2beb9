// docs/configuration.md against the loader: every key the loader accepts is documented
// under its section's heading, and every key the reference's tables name is accepted.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "waypoint/app/config.hpp"

namespace waypoint::app {
namespace {

struct Reference {
  std::set<std::string> headings;                        // "### `name`" of each top-level key
  std::map<std::string, std::vector<std::string>> rows;  // section -> its table rows
  // section -> the keys named in the first column of its "| key |" tables
  std::map<std::string, std::set<std::string>> tableKeys;
};

Reference readReference() {
  std::ifstream file(std::string(WAYPOINT_SOURCE_DIR) + "/docs/configuration.md");
  EXPECT_TRUE(file) << "docs/configuration.md is missing";
  const std::regex heading("^### `([a-z_]+)`.*");
  const std::regex backticked("`([a-z_0-9]+)`");
  Reference reference;
  std::string section;
  bool keyTable = false;
  for (std::string line; std::getline(file, line);) {
    std::smatch match;
    if (std::regex_match(line, match, heading)) {
      section = match[1];
      reference.headings.insert(section);
      continue;
    }
    if (line.rfind("## ", 0) == 0 || line.rfind("### ", 0) == 0) {
      section.clear();
      continue;
    }
    if (section.empty() || line.rfind('|', 0) != 0) {
      keyTable = false;
      continue;
    }
    reference.rows[section].push_back(line);
    if (line.rfind("| key |", 0) == 0) {
      keyTable = true;
      continue;
    }
    if (!keyTable || line.rfind("|---", 0) == 0) continue;
    const std::string firstCell = line.substr(1, line.find('|', 1) - 1);
    for (std::sregex_iterator it(firstCell.begin(), firstCell.end(), backticked), end; it != end;
         ++it) {
      reference.tableKeys[section].insert((*it)[1]);
    }
  }
  return reference;
}

bool documentedIn(const std::vector<std::string>& rows, const std::string& key) {
  const std::string quoted = "`" + key + "`";
  const std::string inMap = key + ":";  // as in `{ exact: "x" }`
  for (const auto& row : rows) {
    if (row.find(quoted) != std::string::npos || row.find(inMap) != std::string::npos) return true;
  }
  return false;
}

TEST(ConfigReferenceTest, EveryKeyTheLoaderAcceptsIsDocumentedUnderItsSection) {
  const Reference reference = readReference();
  for (const auto* table : configKeyTables()) {
    for (const auto& key : table->keys) {
      if (table->section.empty()) {
        EXPECT_TRUE(reference.headings.count(key))
            << "docs/configuration.md has no \"### `" << key << "`\" heading";
        continue;
      }
      EXPECT_TRUE(documentedIn(reference.rows.count(table->section) != 0
                                   ? reference.rows.at(table->section)
                                   : std::vector<std::string>{},
                               key))
          << "docs/configuration.md does not document `" << key << "` in a table under \"### `"
          << table->section << "`\"";
    }
  }
}

TEST(ConfigReferenceTest, EveryKeyTheReferenceListsIsAccepted) {
  std::map<std::string, std::set<std::string>> accepted;
  for (const auto* table : configKeyTables()) {
    accepted[table->section].insert(table->keys.begin(), table->keys.end());
  }
  for (const auto& [section, keys] : readReference().tableKeys) {
    for (const auto& key : keys) {
      EXPECT_TRUE(accepted[section].count(key))
          << "docs/configuration.md lists `" << key << "` under \"### `" << section
          << "`\" but the loader does not accept it there";
    }
  }
}

}  // namespace
}  // namespace waypoint::app
