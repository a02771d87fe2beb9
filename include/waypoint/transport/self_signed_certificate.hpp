#pragma once
// The certificate waypoint makes for itself when TLS is on and none is configured, so TLS
// works out of the box: peers that pin its fingerprint (or skip verification) can connect.

#include <string>
#include <vector>

#include "waypoint/transport/tls_context.hpp"

namespace waypoint::transport {

struct SelfSignedCertificate {
  std::string certificateFile;  // <state_dir>/tls/self-signed.crt
  std::string privateKeyFile;   // <state_dir>/tls/self-signed.key, mode 0600
  std::string fingerprint;      // SHA-256, "AA:BB:..."
  bool created = false;         // made now, not found from an earlier start
};

// Finds the self-signed certificate an earlier start made under stateDir, or makes one:
// an ECDSA P-256 key and a SHA-256-signed certificate valid for ten years, whose
// subjectAltName holds `names` (host names as DNS entries, addresses as IP entries; the
// first one is also the subject CN). Throws std::runtime_error naming the path.
SelfSignedCertificate ensureSelfSignedCertificate(const std::string& stateDir,
                                                  const std::vector<std::string>& names);

// The settings as given when they name a certificate; otherwise with the self-signed one
// filled in, whose fingerprint is logged (info) for operators to give to peers.
TlsSettings withSelfSignedFallback(TlsSettings settings, const std::string& stateDir,
                                   const std::vector<std::string>& names);

}  // namespace waypoint::transport
