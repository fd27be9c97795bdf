#pragma once
// Callback<T>: a move-only, type-erased completion `void(Result<T>)`, called
// exactly once. The connection calls it on its I/O thread, so it must not
// block; the blocking and awaitable forms of the API wrap it (a promise; a
// post back to the awaiting coroutine's executor).

#include <memory>
#include <type_traits>
#include <utility>

#include "common/result.h"

namespace memkv::client {

template <class T>
class Callback {
 public:
  Callback() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Callback>>>
  Callback(F f) : impl_(std::make_unique<Model<F>>(std::move(f))) {}  // NOLINT: implicit on purpose

  explicit operator bool() const { return impl_ != nullptr; }

  // Calls the function; this becomes empty.
  void operator()(Result<T> r) {
    auto impl = std::move(impl_);
    impl->Call(std::move(r));
  }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void Call(Result<T> r) = 0;
  };
  template <class F>
  struct Model final : Concept {
    explicit Model(F fn) : f(std::move(fn)) {}
    void Call(Result<T> r) override { f(std::move(r)); }
    F f;
  };
  std::unique_ptr<Concept> impl_;
};

}  // namespace memkv::client
