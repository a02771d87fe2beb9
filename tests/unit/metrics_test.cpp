// The Prometheus text rendered from the counter tables (issue 11), and docs/metrics.md
// checked against it: a metric that is rendered but not documented, or documented but
// not rendered, fails here.

#include "waypoint/app/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace waypoint::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Every counters struct at its defaults, and the text rendered from them.
struct AllCounters {
  transport::TransportCounters transport;
  DispatcherCounters dispatcher;
  transaction::TransactionCounters transactions;
  registrar::RegistrarCounters registrar;
  registrar::RegistrarGauges registrarGauges;
  proxy::ProxyCounters proxy;
  auth::SourceGuardCounters flood;
  auth::AuthCounters auth;
  persistence::PersistenceMetricValues persistence;

  std::string render(bool withAuth = true) const {
    return renderMetrics(MetricSources{transport, dispatcher, transactions, registrar,
                                       registrarGauges, proxy, flood, withAuth ? &auth : nullptr,
                                       auth::AuthGauges{7}, persistence, "1.2.3", 1764770000});
  }
};

// "# TYPE NAME TYPE" lines: {name: type}.
std::map<std::string, std::string> typeLines(const std::string& text) {
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(# TYPE (\S+) (\S+))"))) {
      EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "TYPE twice for " << m[1];
    }
  }
  return types;
}

TEST(MetricsTest, EveryMetricHasHelpAndTypeOnceAndCountersEndInTotal) {
  const std::string text = AllCounters{}.render();
  const auto types = typeLines(text);
  ASSERT_GT(types.size(), 80u);
  for (const auto& [name, type] : types) {
    EXPECT_EQ(text.find("# HELP " + name + " "), text.rfind("# HELP " + name + " "))
        << "HELP once for " << name;
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
    EXPECT_THAT(text, Not(HasSubstr("# HELP " + name + " \n"))) << "empty help for " << name;
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    } else {
      EXPECT_FALSE(name.ends_with("_total")) << name;
      EXPECT_TRUE(type == "gauge" || type == "histogram") << name << " " << type;
    }
  }
  // Every sample line belongs to a declared metric.
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!types.count(name) && name.ends_with(suffix)) {
        name.resize(name.size() - std::string_view(suffix).size());
      }
    }
    EXPECT_TRUE(types.count(name)) << "sample without TYPE: " << line;
  }
}

TEST(MetricsTest, CountersGaugesAndLabelledSeriesCarryTheirValues) {
  AllCounters c;
  c.transport.udpDatagramsReceived = 42;
  c.transport.connectionsAccepted[transport::connectionIndex(transport::Protocol::wss)] = 3;
  c.transport.connectionsOpen[transport::connectionIndex(transport::Protocol::tcp)] = 2;
  c.transport.tcpConnectionsClosedFraming = 5;
  c.dispatcher.requestsReceived[methodLabel("INVITE")] = 4;
  c.dispatcher.requestsReceived[methodLabel("invite")] = 1;  // case-sensitive: other
  c.dispatcher.responsesReceived[metrics::statusClassIndex(486)] = 6;
  c.transactions.responsesSent[metrics::statusClassIndex(180)] = 8;
  c.registrarGauges.bindings = 9;
  c.auth.failures = 11;
  c.persistence.failing = 1;
  const std::string text = c.render();
  EXPECT_THAT(text, HasSubstr("\nwaypoint_udp_datagrams_received_total 42\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_connections_accepted_total{transport=\"wss\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_connections_accepted_total{transport=\"tcp\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_connections_open{transport=\"tcp\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_connections_closed_total{reason=\"framing\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_requests_received_total{method=\"INVITE\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_requests_received_total{method=\"other\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_responses_received_total{class=\"4xx\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_responses_sent_total{class=\"1xx\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_registrar_bindings 9\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_auth_failures_total 11\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_auth_users 7\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_registrar_persistence_failing 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE waypoint_registrar_bindings gauge\n"));
  EXPECT_THAT(text, HasSubstr("\nwaypoint_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_start_time_seconds gauge\n"
                              "process_start_time_seconds 1764770000\n"));
}

TEST(MetricsTest, WithoutAuthenticationThereAreNoAuthMetrics) {
  const std::string text = AllCounters{}.render(false);
  EXPECT_THAT(text, Not(HasSubstr("waypoint_auth_")));
  EXPECT_THAT(text, HasSubstr("waypoint_flood_dropped_total 0\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeInSeconds) {
  AllCounters c;
  c.proxy.requestForward.observe(std::chrono::microseconds(80));       // <= 0.0001
  c.proxy.requestForward.observe(std::chrono::microseconds(100));      // <= 0.0001 (inclusive)
  c.proxy.requestForward.observe(std::chrono::microseconds(3000));     // <= 0.005
  c.proxy.requestForward.observe(std::chrono::microseconds(7000000));  // +Inf only
  const std::string text = c.render();
  const std::string name = "waypoint_request_forward_seconds";
  EXPECT_THAT(text, HasSubstr("# TYPE " + name + " histogram\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_bucket{le=\"0.0001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_bucket{le=\"0.0025\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_bucket{le=\"0.005\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_bucket{le=\"5\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_bucket{le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_sum 7.00318\n"));
  EXPECT_THAT(text, HasSubstr("\n" + name + "_count 4\n"));
}

TEST(MetricsTest, MethodsAndStatusClassesMapToTheirLabels) {
  EXPECT_EQ(methodLabels[static_cast<std::size_t>(methodLabel("REGISTER"))], "REGISTER");
  EXPECT_EQ(methodLabels[static_cast<std::size_t>(methodLabel("PUBLISH"))], "PUBLISH");
  EXPECT_EQ(methodLabel("FOO"), MethodLabel::other);
  EXPECT_EQ(methodLabel(""), MethodLabel::other);
  EXPECT_EQ(metrics::statusClassLabels[metrics::statusClassIndex(100)], "1xx");
  EXPECT_EQ(metrics::statusClassLabels[metrics::statusClassIndex(699)], "6xx");
  EXPECT_LE(methodLabels.size(), metrics::Family::capacity);
}

// The names as docs/metrics.md lists them: `waypoint_...` or `process_...` in the first
// column of a table row.
std::set<std::string> documentedNames() {
  std::ifstream file(WAYPOINT_SOURCE_DIR "/docs/metrics.md");
  EXPECT_TRUE(file) << "cannot read docs/metrics.md";
  std::set<std::string> names;
  std::string line;
  const std::regex row(R"(^\| `((?:waypoint|process)_[a-z0-9_]+)`)");
  while (std::getline(file, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) names.insert(m[1]);
  }
  return names;
}

TEST(MetricsTest, DocsListExactlyTheMetricsRendered) {
  std::set<std::string> rendered;
  for (const auto& [name, type] : typeLines(AllCounters{}.render())) rendered.insert(name);
  const std::set<std::string> documented = documentedNames();
  for (const std::string& name : rendered) {
    EXPECT_TRUE(documented.count(name)) << name << " is not in docs/metrics.md";
  }
  for (const std::string& name : documented) {
    EXPECT_TRUE(rendered.count(name))
        << "docs/metrics.md lists " << name << ", which is not rendered";
  }
}

}  // namespace
}  // namespace waypoint::app
