#!/usr/bin/env bash
# Developer entry point for waypoint on Debian 12.
#
#   bash scripts/dev.sh run    install what is missing, build (build/), run waypointd
#                              with config/waypoint.yaml (127.0.0.1:5060 UDP and TCP)
#   bash scripts/dev.sh test   install (and npm ci in tests/browser); check that every
#                              tracked C++ file is clang-formatted; build build/
#                              (RelWithDebInfo), run the whole test suite there and
#                              clang-tidy (.clang-tidy) over src/; build build-asan/
#                              (Debug, ASan+UBSan) and run the
#                              suite; build build-release/ (Release) and run the unit
#                              tests; then, when clang-14 with libFuzzer is installed,
#                              build the fuzz targets in build-fuzz/ and run each for a
#                              bounded time (skipped otherwise)
#   bash scripts/dev.sh build  install and build build/ only
#
# Environment:
#   BUILD_JOBS     parallel compile jobs (default 2)
#   CTEST_PARALLEL parallel ctest jobs (default 2; tests pick their own free ports)
#   CTEST_TIMEOUT  default per-test timeout in seconds (default 600)
#   CTEST_ARGS     extra ctest arguments, e.g. CTEST_ARGS="-R Parser"
#   FUZZ=0         skip the build-fuzz/ stage of `test`
#   RELEASE=0      skip the build-release/ stage of `test`
#   WAYPOINT_E2E_NETNS=0  run the end-to-end tests in the host's network namespace
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly PACKAGES=(
  g++ cmake make pkg-config
  libsofia-sip-ua-dev libboost-dev libssl-dev libspdlog-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libsystemd-dev libsqlite3-dev nlohmann-json3-dev
  systemd dpkg-dev
  sip-tester python3 iproute2 procps ca-certificates util-linux git
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
  chromium nodejs npm
  baresip-core sipvicious
)
readonly BUILD_JOBS="${BUILD_JOBS:-2}"
readonly CTEST_PARALLEL="${CTEST_PARALLEL:-2}"
readonly CTEST_TIMEOUT="${CTEST_TIMEOUT:-600}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# True when the Debian package is installed. An npm on PATH counts for npm: a nodejs
# from NodeSource bundles it and conflicts with Debian's npm package.
package_installed() {
  if [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; then
    return 0
  fi
  [[ "$1" == npm ]] && command -v npm >/dev/null 2>&1
}

# Installs the Debian packages that are not installed yet. Does nothing (and needs no
# network) when every package is already there.
install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    if ! package_installed "$pkg"; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "packages: all ${#PACKAGES[@]} installed"
    return
  fi
  log "packages: installing ${missing[*]}"

  local sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      log "not running as root; using sudo to install packages"
      sudo=(sudo)
    else
      die "not running as root and sudo is not available; as root run: apt-get install ${missing[*]}"
    fi
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# The npm packages of the browser test (tests/browser: JsSIP, esbuild, puppeteer-core,
# which drives the system's Chromium and downloads no browser). npm ci from the lock file;
# skipped (no network needed) when node_modules already holds that lock file's install.
install_browser_modules() {
  local dir=tests/browser stamp=tests/browser/node_modules/.waypoint-package-lock.json
  if cmp -s "$dir/package-lock.json" "$stamp"; then
    log "npm: tests/browser/node_modules up to date"
    return
  fi
  log "npm: npm ci in tests/browser"
  (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund) ||
    die "npm ci in tests/browser failed"
  cp "$dir/package-lock.json" "$stamp"
}

# configure_and_build DIR CMAKE_ARGS...
configure_and_build() {
  local dir="$1"
  shift
  cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j "$BUILD_JOBS"
}

build_normal() {
  configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
}

build_asan() {
  configure_and_build build-asan -DWAYPOINT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
}

# The optimised build: g++ -O3 sees (and warns about) things the others do not.
build_release() {
  configure_and_build build-release -DCMAKE_BUILD_TYPE=Release
}

# The tracked C++ files (git), or every C++ file under the source folders outside git.
cpp_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -- '*.cpp' '*.hpp' '*.h' '*.cc'
  else
    find src include tests bench -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc'
  fi
}

# Fails when any C++ file differs from what clang-format 14 (.clang-format) makes of it.
check_format() {
  local files=()
  mapfile -t files < <(cpp_files)
  clang-format-14 --dry-run -Werror "${files[@]}"
}

# clang-tidy (.clang-tidy: its checks are errors) over src/, with the compile commands of
# build/ (CMAKE_EXPORT_COMPILE_COMMANDS).
run_tidy() {
  local status=0
  # The argument is a regex on the paths of build/compile_commands.json: every file of src/.
  run-clang-tidy-14 -quiet -j "$BUILD_JOBS" -p build "^$PWD/src/" >build/clang-tidy.log 2>&1 ||
    status=$?
  # Only the findings (without colour codes), not the command lines and "N warnings generated".
  sed 's/\x1b\[[0-9;]*m//g' build/clang-tidy.log | grep -E '(warning|error):' || true
  return "$status"
}

# True when clang++-14 can link a libFuzzer target (needs clang-14 and libclang-rt-14-dev).
have_libfuzzer() {
  command -v clang++-14 >/dev/null 2>&1 || return 1
  local probe
  probe="$(mktemp -d)"
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' \
    >"$probe/probe.cpp"
  local ok=0
  clang++-14 -fsanitize=fuzzer,address "$probe/probe.cpp" -o "$probe/probe" >/dev/null 2>&1 || ok=1
  rm -rf "$probe"
  return "$ok"
}

# The fuzz targets only (tests/fuzz), with clang, ASan+UBSan and asserts on (-O1).
build_fuzz() {
  CC=clang-14 CXX=clang++-14 configure_and_build build-fuzz -DWAYPOINT_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1"
}

# run_tests DIR [ENV=VALUE...]
run_tests() {
  local dir="$1"
  shift
  local extra=()
  if [[ -n "${CTEST_ARGS:-}" ]]; then
    read -r -a extra <<<"$CTEST_ARGS"
  fi
  (cd "$dir" && env "$@" ctest --output-on-failure --no-tests=error \
    -j "$CTEST_PARALLEL" --timeout "$CTEST_TIMEOUT" "${extra[@]}")
}

cmd_run() {
  install_packages
  log "build/ (RelWithDebInfo)"
  build_normal
  log "starting build/src/app/waypointd -c config/waypoint.yaml"
  exec build/src/app/waypointd -c config/waypoint.yaml "$@"
}

cmd_build() {
  install_packages
  log "build/ (RelWithDebInfo)"
  build_normal
}

cmd_test() {
  install_packages
  install_browser_modules
  local summary=() failed=0

  log "clang-format: checking every C++ file"
  if check_format; then
    summary+=("format passed")
  else
    summary+=("FORMAT FAILED (run clang-format-14 -i on the files above)")
    failed=1
  fi

  log "build/ (RelWithDebInfo): building"
  if build_normal; then
    log "build/ (RelWithDebInfo): running tests"
    if run_tests build; then
      summary+=("build/ passed")
    else
      summary+=("build/ TESTS FAILED")
      failed=1
    fi
    log "clang-tidy: src/ (build/compile_commands.json)"
    if run_tidy; then
      summary+=("tidy passed")
    else
      summary+=("TIDY FAILED (build/clang-tidy.log)")
      failed=1
    fi
  else
    summary+=("build/ BUILD FAILED")
    failed=1
  fi

  log "build-asan/ (Debug, ASan+UBSan): building"
  if build_asan; then
    log "build-asan/ (Debug, ASan+UBSan): running tests"
    if run_tests build-asan \
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; then
      summary+=("build-asan/ passed")
    else
      summary+=("build-asan/ TESTS FAILED")
      failed=1
    fi
  else
    summary+=("build-asan/ BUILD FAILED")
    failed=1
  fi

  if [[ "${RELEASE:-1}" == 0 ]]; then
    log "build-release/: skipped (RELEASE=0)"
    summary+=("build-release/ skipped (RELEASE=0)")
  else
    log "build-release/ (Release): building"
    if build_release; then
      log "build-release/ (Release): running the unit tests"
      if CTEST_ARGS="-LE e2e ${CTEST_ARGS:-}" run_tests build-release; then
        summary+=("build-release/ passed")
      else
        summary+=("build-release/ TESTS FAILED")
        failed=1
      fi
    else
      summary+=("build-release/ BUILD FAILED")
      failed=1
    fi
  fi

  if [[ "${FUZZ:-1}" == 0 ]]; then
    log "build-fuzz/: skipped (FUZZ=0)"
    summary+=("build-fuzz/ skipped (FUZZ=0)")
  elif have_libfuzzer; then
    log "build-fuzz/ (clang, libFuzzer, ASan+UBSan): building"
    if build_fuzz; then
      log "build-fuzz/ (clang, libFuzzer, ASan+UBSan): running fuzz targets"
      if run_tests build-fuzz \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; then
        summary+=("build-fuzz/ passed")
      else
        summary+=("build-fuzz/ FUZZING FAILED")
        failed=1
      fi
    else
      summary+=("build-fuzz/ BUILD FAILED")
      failed=1
    fi
  else
    log "build-fuzz/: skipped (needs clang-14 and libclang-rt-14-dev)"
    summary+=("build-fuzz/ skipped (no clang-14 libFuzzer)")
  fi

  local joined
  joined="$(printf '%s; ' "${summary[@]}")"
  joined="${joined%; }"
  if ((failed)); then
    printf 'SUMMARY: FAILED: %s\n' "$joined"
    exit 1
  fi
  printf 'SUMMARY: OK: %s\n' "$joined"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  build) shift; cmd_build "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
