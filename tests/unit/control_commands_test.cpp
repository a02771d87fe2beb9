#include "waypoint/app/control_commands.hpp"

#include <gtest/gtest.h>

namespace waypoint::app {
namespace {

class ControlCommandsTest : public ::testing::Test {
 protected:
  ControlCommandsTest() {
    operations_.status = [] { return nlohmann::json{{"version", "test"}}; };
    operations_.reload = [] { return nlohmann::json{{"ok", false}, {"error", "bad file"}}; };
    operations_.bindings = [this](const std::string& aor) {
      lastAor_ = aor;
      return nlohmann::json{{"aors", nlohmann::json::array()}};
    };
    operations_.unregister = [this](const std::string& aor, const std::string& contact) {
      lastAor_ = aor;
      lastContact_ = contact;
      return nlohmann::json{{"removed", 1}};
    };
    operations_.logLevel = [](const std::string& level) {
      return nlohmann::json{{"level", level}};
    };
    operations_.connections = [] { return nlohmann::json{{"connections", 2}}; };
    operations_.routeExplain = [this](const RouteQuestion& question) {
      lastQuestion_ = question;
      return nlohmann::json{{"rule", "default"}};
    };
    operations_.trace = [this](const TraceRequest& request) {
      lastTrace_ = request;
      return nlohmann::json::object();
    };
  }
  nlohmann::json ask(std::string_view request) {
    return nlohmann::json::parse(handleControlRequest(request, operations_));
  }
  ControlOperations operations_;
  std::string lastAor_ = "unset";
  std::string lastContact_ = "unset";
  RouteQuestion lastQuestion_{"unset", "unset", "unset", "unset"};
  std::optional<TraceRequest> lastTrace_;
};

TEST_F(ControlCommandsTest, CommandsReachTheirOperationWithTheirArguments) {
  EXPECT_EQ(ask(R"({"command":"status"})"), (nlohmann::json{{"ok", true}, {"version", "test"}}));
  EXPECT_TRUE(ask(R"({"command":"bindings"})")["ok"]);
  EXPECT_EQ(lastAor_, "");
  ask(R"({"command":"bindings","aor":"sip:bob@example.com"})");
  EXPECT_EQ(lastAor_, "sip:bob@example.com");
  ask(R"({"command":"unregister","aor":"sip:bob@example.com","contact":"sip:bob@192.0.2.1"})");
  EXPECT_EQ(lastContact_, "sip:bob@192.0.2.1");
  EXPECT_EQ(ask(R"({"command":"log-level","level":"debug"})")["level"], "debug");
  EXPECT_EQ(ask(R"({"command":"connections"})")["connections"], 2);
  EXPECT_EQ(
      ask(R"({"command":"route-explain","request":"INVITE sip:bob@example.com",)"
          R"("from":"sip:alice@example.org","source":"192.0.2.7","transport":"tcp"})")["rule"],
      "default");
  EXPECT_EQ(lastQuestion_.requestLine, "INVITE sip:bob@example.com");
  EXPECT_EQ(lastQuestion_.from, "sip:alice@example.org");
  EXPECT_EQ(lastQuestion_.source, "192.0.2.7");
  EXPECT_EQ(lastQuestion_.transport, "tcp");
  ask(R"({"command":"route-explain","request":"OPTIONS sip:example.com"})");
  EXPECT_EQ(lastQuestion_.from, "");
  EXPECT_EQ(lastQuestion_.transport, "");
}

TEST_F(ControlCommandsTest, AnOperationsRefusalStaysARefusal) {
  const auto reply = ask(R"({"command":"reload"})");
  EXPECT_FALSE(reply["ok"]);
  EXPECT_EQ(reply["error"], "bad file");
}

TEST_F(ControlCommandsTest, BadRequestsGetAClearErrorAndReachNoOperation) {
  EXPECT_EQ(ask("not json")["error"], "the request is not JSON");
  EXPECT_EQ(ask("[1,2]")["error"], "the request must be a JSON object");
  EXPECT_EQ(ask("{}")["error"], "the request has no 'command'");
  EXPECT_EQ(ask(R"({"command":"format-disk"})")["error"], "unknown command 'format-disk'");
  EXPECT_EQ(ask(R"({"command":"unregister"})")["error"], "unregister needs an 'aor'");
  EXPECT_EQ(ask(R"({"command":"bindings","aor":7})")["error"], "'aor' must be a string");
  EXPECT_EQ(ask(R"({"command":"route-explain"})")["error"], "route-explain needs a 'request'");
  EXPECT_EQ(lastAor_, "unset");
  EXPECT_EQ(lastQuestion_.requestLine, "unset");
}

}  // namespace
}  // namespace waypoint::app

namespace waypoint::app {
namespace {

TEST_F(ControlCommandsTest, TraceListsStartsAndStops) {
  EXPECT_TRUE(ask(R"({"command":"trace"})")["ok"]);
  ASSERT_TRUE(lastTrace_);
  EXPECT_EQ(lastTrace_->action, TraceRequest::Action::list);

  ask(R"({"command":"trace","call_id":"abc@host","count":20,"minutes":3})");
  EXPECT_EQ(lastTrace_->action, TraceRequest::Action::start);
  EXPECT_EQ(lastTrace_->callId, "abc@host");
  EXPECT_EQ(lastTrace_->count, 20u);
  EXPECT_EQ(lastTrace_->time, std::chrono::minutes(3));

  ask(R"({"command":"trace","source":"192.0.2.7"})");
  EXPECT_EQ(lastTrace_->source, "192.0.2.7");
  EXPECT_EQ(lastTrace_->count, std::nullopt);

  ask(R"({"command":"trace","off":true,"id":2})");
  EXPECT_EQ(lastTrace_->action, TraceRequest::Action::stop);
  EXPECT_EQ(lastTrace_->id, 2u);
}

TEST_F(ControlCommandsTest, BadTraceArgumentsAreRefusedBeforeTheOperation) {
  lastTrace_.reset();
  EXPECT_EQ(ask(R"({"command":"trace","source":"192.0.2.7","call_id":"x"})")["error"],
            "a trace is by 'source' or by 'call_id', not both");
  EXPECT_EQ(ask(R"({"command":"trace","call_id":"x","count":0})")["error"],
            "'count' must be a whole number above 0");
  EXPECT_EQ(ask(R"({"command":"trace","call_id":"x","minutes":-1})")["error"],
            "'minutes' must be a whole number above 0");
  EXPECT_EQ(ask(R"({"command":"trace","off":"yes"})")["error"], "'off' must be true or false");
  EXPECT_FALSE(lastTrace_);
}

}  // namespace
}  // namespace waypoint::app
