// Result<T, E>: a value or an error, for code that must not throw (the data plane).
#pragma once

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace xrayd {

// Wraps an error so that Result's constructors cannot confuse it with a value.
template <typename E>
struct Failure {
    E error;
};

template <typename E>
[[nodiscard]] Failure<std::decay_t<E>> fail(E&& error) {
    return Failure<std::decay_t<E>>{std::forward<E>(error)};
}

// A value of type T, or an error of type E. g++ 12 in C++20 mode has no std::expected.
template <typename T, typename E>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Failure<E> f) : v_(std::in_place_index<1>, std::move(f.error)) {}  // NOLINT

    [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    // IMPORTANT: only call value() after checking ok(); error() only when !ok().
    [[nodiscard]] T& value() & { return std::get<0>(v_); }
    [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
    [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }
    [[nodiscard]] const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

// Success carries no value.
template <typename E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    Result(Failure<E> f) : error_(std::move(f.error)) {}  // NOLINT: implicit by design

    [[nodiscard]] bool ok() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    [[nodiscard]] const E& error() const { return *error_; }

private:
    std::optional<E> error_;
};

}  // namespace xrayd
