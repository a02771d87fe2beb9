#pragma once
// `waypointd --check-config -c FILE` and `waypointctl check-config FILE`: one check, one
// report, whichever command runs it.

#include <string>

namespace waypoint::app {

// Loads FILE as the daemon would. Prints the warnings to stderr, then "FILE: configuration
// OK, N routing rules" and what each listener advertises to stdout, and returns 0; or
// prints the error (FILE:LINE:COLUMN: ...) to stderr and returns 1.
int checkConfigFile(const std::string& path);

}  // namespace waypoint::app
