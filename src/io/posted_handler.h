#pragma once
// Internal to src/io (included by .cc files only: it pulls in Asio).
//
// PostedHandler<Args...>: a type-erased, move-only completion handler that is
// always completed by posting it to its own associated executor, so the
// caller resumes in a handler of its own loop and never inside the code that
// completes it (the ring's drain, a helper thread, a buffer's release).
// While it waits it counts as outstanding work of that executor, so the
// caller's io_context does not run out of work (and return from run()) while
// a helper thread or another coroutine still owes it a completion.
// (Boost 1.81's any_completion_handler cannot be posted: its executor does
// not accept blocking.never.)

#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

namespace memkv::io::detail {

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
    Work work;  // released with the model, after the post
    Handler handler;
  };

  std::unique_ptr<Concept> impl_;
};

}  // namespace memkv::io::detail
