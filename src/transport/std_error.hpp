#pragma once
// Boost errors cross into the rest of the daemon as std ones: callers compare with
// std::errc. Private to src/transport.

#include <boost/system/error_code.hpp>
#include <system_error>

namespace waypoint::transport {

inline std::error_code toStdError(const boost::system::error_code& ec) {
  if (ec.category() == boost::system::system_category()) {
    return {ec.value(), std::system_category()};
  }
  return ec;
}

}  // namespace waypoint::transport
