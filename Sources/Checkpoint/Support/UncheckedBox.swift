/// Carries a non-`Sendable` value into a `@Sendable` closure. The registry's contract is that
/// saves and restores do not run concurrently with the application mutating the same state.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
