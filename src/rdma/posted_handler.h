#pragma once
// Internal to src/rdma (included by .cc files only: it pulls in Asio).
//
// PostedHandler<Args...>: a type-erased, move-only completion handler that
// is completed by posting it to its own associated executor, so that an
// operation's coroutine resumes on its own loop, never inside the drain of
// the completion queue (which runs on the fabric's loop, under no lock of the
// caller's). While it waits it counts as outstanding work of that executor.
// (The same device as io's detail::PostedHandler; rdma may not include io.)

#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

namespace memkv::rdma::detail {

template <class... Args>
class PostedHandler {
 public:
  PostedHandler() = default;
  template <class Handler>
  explicit PostedHandler(Handler handler)
      : impl_(std::make_unique<Model<Handler>>(std::move(handler))) {}

  explicit operator bool() const { return impl_ != nullptr; }

  // Posts the handler with `args` to its executor; this becomes empty.
  void Post(Args... args) {
    auto impl = std::move(impl_);
    impl->Post(std::move(args)...);
  }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void Post(Args... args) = 0;
  };
  template <class Handler>
  struct Model final : Concept {
    using Work = std::decay_t<decltype(boost::asio::prefer(
        std::declval<boost::asio::associated_executor_t<Handler>>(),
        boost::asio::execution::outstanding_work.tracked))>;

    explicit Model(Handler h)
        : work(boost::asio::prefer(boost::asio::get_associated_executor(h),
                                   boost::asio::execution::outstanding_work.tracked)),
          handler(std::move(h)) {}
    void Post(Args... args) override {
      boost::asio::post(boost::asio::append(std::move(handler), std::move(args)...));
    }
    Work work;
    Handler handler;
  };

  std::unique_ptr<Concept> impl_;
};

}  // namespace memkv::rdma::detail
