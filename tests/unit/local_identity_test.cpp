// Which address the proxy writes into Via and Record-Route for each listener (issue 9):
// a concrete listener its own address, a wildcard (0.0.0.0, ::) listener the address a
// request arrived on or the one routed towards the next hop, an advertised listener its
// advertised name.

#include "waypoint/proxy/local_identity.hpp"

#include <gtest/gtest.h>

#include "fakes.hpp"
#include "waypoint/proxy/next_hop.hpp"

namespace waypoint::testkit {
namespace {

using transport::HostPort;
using transport::parseHostPort;
using transport::Protocol;

// A routing table of one entry: everything goes out from 192.0.2.1 (and 2001:db8::1).
std::optional<boost::asio::ip::address> fakeRoute(const transport::Endpoint& remote) {
  if (remote.address == boost::asio::ip::make_address("203.0.113.99")) return std::nullopt;
  return boost::asio::ip::make_address(remote.address.is_v6() ? "2001:db8::1" : "192.0.2.1");
}

sip::Uri uri(const std::string& text) { return *sip::parseUri(text); }

TEST(LocalIdentityTest, WildcardAddressIsNoNameButItsPortIsOurs) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5070));
  EXPECT_FALSE(identity.isLocalHost("0.0.0.0"));
  identity.addName("192.0.2.1");  // what the daemon adds from getifaddrs
  EXPECT_TRUE(identity.isThisServer(uri("sip:192.0.2.1:5070")));
  EXPECT_FALSE(identity.isThisServer(uri("sip:192.0.2.1:5071")));
  EXPECT_TRUE(identity.hasWildcardListener());
}

TEST(LocalIdentityTest, EveryAddressOfALoopbackBlockIsOurs) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5060));
  identity.addAddressBlock(*transport::parseAddressBlock("127.0.0.0/8"));
  EXPECT_TRUE(identity.isLocalSentBy("127.0.0.2", 5060));
  EXPECT_FALSE(identity.isLocalSentBy("128.0.0.2", 5060));
  EXPECT_FALSE(identity.isLocalSentBy("localhost.example", 5060));
}

TEST(LocalIdentityTest, ArrivalOnAWildcardListenerNamesTheAddressTheRequestCameTo) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5060));
  identity.addListener(Protocol::tcp, endpoint("::", 5060));
  const proxy::Interface udp =
      identity.arrivalInterface(Protocol::udp, endpoint("127.0.0.2", 5060));
  EXPECT_EQ(udp.local, endpoint("127.0.0.2", 5060));
  EXPECT_EQ(udp.hostPortOf(), "127.0.0.2:5060");
  // A connection we opened has an ephemeral local port; its listener's port is written.
  const proxy::Interface tcp =
      identity.arrivalInterface(Protocol::tcp, endpoint("2001:db8::7", 40312));
  EXPECT_EQ(tcp.hostPortOf(), "[2001:db8::7]:5060");
}

TEST(LocalIdentityTest, ArrivalPicksTheListenerBoundThereNotTheFirstOfItsFamily) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("192.0.2.1", 5060));
  identity.addListener(Protocol::udp, endpoint("192.0.2.1", 5080));
  EXPECT_EQ(identity.arrivalInterface(Protocol::udp, endpoint("192.0.2.1", 5080)).hostPortOf(),
            "192.0.2.1:5080");
}

TEST(LocalIdentityTest, DepartureFromAWildcardListenerUsesTheRoutedSourceAddress) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5060));
  identity.addListener(Protocol::udp, endpoint("::", 5062));
  identity.setSourceResolver(fakeRoute);
  const auto v4 = identity.departureInterface(Protocol::udp, endpoint("198.51.100.20", 5060));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->local, endpoint("192.0.2.1", 5060));
  const auto v6 = identity.departureInterface(Protocol::udp, endpoint("2001:db8::20", 5060));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->hostPortOf(), "[2001:db8::1]:5062");
  // No route: nothing honest to write into Via.
  EXPECT_FALSE(identity.departureInterface(Protocol::udp, endpoint("203.0.113.99", 5060)));
  EXPECT_FALSE(identity.departureInterface(Protocol::tcp, endpoint("198.51.100.20", 5060)));
}

TEST(LocalIdentityTest, WildcardWithoutAResolverHasNoDepartureAddress) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("0.0.0.0", 5060));
  EXPECT_FALSE(identity.departureInterface(Protocol::udp, endpoint("198.51.100.20", 5060)));
}

TEST(LocalIdentityTest, AdvertisedNameIsWrittenAndRecognisedButTheRealAddressIsSentFrom) {
  proxy::LocalIdentity identity;
  identity.addListener(Protocol::udp, endpoint("10.0.0.5", 5060), HostPort{"sip.example.com", {}});
  identity.addListener(Protocol::tcp, endpoint("0.0.0.0", 5060), HostPort{"198.51.100.1", 5090});
  identity.setSourceResolver(fakeRoute);
  const proxy::Interface in = identity.arrivalInterface(Protocol::udp, endpoint("10.0.0.5", 5060));
  EXPECT_EQ(in.local, endpoint("10.0.0.5", 5060));
  EXPECT_EQ(in.hostPortOf(), "sip.example.com:5060");
  const auto out = identity.departureInterface(Protocol::tcp, endpoint("198.51.100.20", 5060));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->local, endpoint("192.0.2.1", 5060));
  EXPECT_EQ(out->hostPortOf(), "198.51.100.1:5090");
  // In-dialog requests come back to the advertised name and port.
  EXPECT_TRUE(identity.isThisServer(uri("sip:sip.example.com")));
  EXPECT_TRUE(identity.isLocalSentBy("198.51.100.1", 5090));
  // With no route, the advertised name still stands; the kernel picks the source.
  const auto unrouted = identity.departureInterface(Protocol::tcp, endpoint("203.0.113.99", 5060));
  ASSERT_TRUE(unrouted);
  EXPECT_EQ(unrouted->hostPortOf(), "198.51.100.1:5090");
}

TEST(NextHopTest, ViaAndRecordRouteWriteTheAdvertisedName) {
  const proxy::Interface udp{Protocol::udp, endpoint("10.0.0.5", 5060), "sip.example.com:5060"};
  const proxy::Interface tcp{Protocol::tcp, endpoint("10.0.0.5", 5060), ""};
  EXPECT_EQ(proxy::viaValue(udp, "z9hG4bKx"), "SIP/2.0/UDP sip.example.com:5060;branch=z9hG4bKx");
  EXPECT_EQ(proxy::recordRouteValues(udp, tcp, ";wpa=1"),
            (std::vector<std::string>{"<sip:10.0.0.5:5060;transport=tcp;lr;wpa=1>",
                                      "<sip:sip.example.com:5060;lr;wpa=1>"}));
}

TEST(HostPortTest, ParsesNamesAddressesAndBracketedIPv6) {
  EXPECT_EQ(parseHostPort("sip.example.com"), (HostPort{"sip.example.com", {}}));
  EXPECT_EQ(parseHostPort("198.51.100.1:5070"), (HostPort{"198.51.100.1", 5070}));
  EXPECT_EQ(parseHostPort("[2001:db8::1]:5061"), (HostPort{"2001:db8::1", 5061}));
  EXPECT_EQ(parseHostPort("[2001:db8::1]"), (HostPort{"2001:db8::1", {}}));
  EXPECT_EQ(parseHostPort("2001:db8::1"), (HostPort{"2001:db8::1", {}}));
  EXPECT_EQ(transport::toString(*parseHostPort("2001:db8::1"), 5060), "[2001:db8::1]:5060");
  for (const char* bad : {"", ":5060", "host:", "host:0", "host:65536", "host:50x", "ho st",
                          "[2001:db8::1", "[192.0.2.1]:5060", "[2001:db8::1]x", "a_b.example"}) {
    EXPECT_FALSE(parseHostPort(bad)) << bad;
  }
}

}  // namespace
}  // namespace waypoint::testkit
