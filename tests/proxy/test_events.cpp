// The event bus: free when nobody watches, one wake per batch, bounded.
#include <doctest/doctest.h>

#include <string>

#include "proxy/events.hpp"

using namespace sluice::proxy;

TEST_CASE("EventBus: nothing is queued without a reader") {
  EventBus bus;
  int wakes = 0;
  bus.set_wake([&] { ++wakes; });
  CHECK_FALSE(bus.wanted());
  bus.publish("{}");
  CHECK(bus.take().empty());
  CHECK(wakes == 0);
}

TEST_CASE("EventBus: one wake per batch, lines in order") {
  EventBus bus;
  int wakes = 0;
  bus.set_wake([&] { ++wakes; });
  bus.add_reader();
  CHECK(bus.wanted());
  bus.publish("1");
  bus.publish("2");
  bus.publish("3");
  CHECK(wakes == 1);
  CHECK(bus.take() == std::vector<std::string>{"1", "2", "3"});
  bus.publish("4");
  CHECK(wakes == 2);
  bus.remove_reader();
  CHECK(bus.readers() == 0);
}

TEST_CASE("EventBus: beyond its bound lines are dropped and counted, never waited for") {
  EventBus bus;
  bus.add_reader();
  for (size_t i = 0; i < EventBus::kMaxQueued + 10; ++i) bus.publish("x");
  CHECK(bus.dropped() == 10);
  CHECK(bus.take().size() == EventBus::kMaxQueued);
  bus.publish("y");
  CHECK(bus.take().size() == 1);
}
