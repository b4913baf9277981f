import Synchronization

/// Hooks the application registers so it can take part in process dumps: close sockets and device
/// handles before (``Hooks/willDump``), and reopen them after (``Hooks/didContinue`` in the process
/// that went on, ``Hooks/didRestore`` in a restored copy).
///
/// `willDump` hooks run in registration order; the after-hooks run in reverse order. A `willDump`
/// that throws cancels the dump cleanly: the participants already quiesced get `didContinue`
/// (in reverse order) and the dump is recorded as `cancelled`.
public final class DumpParticipants: Sendable {
    /// One participant's hooks.
    public struct Hooks: Sendable {
        /// Quiesce before the dump: flush files, close sockets and device handles. Throw to cancel.
        public var willDump: @Sendable () throws -> Void
        /// The dump finished (or was cancelled) and this process continues: reopen, reconnect.
        public var didContinue: @Sendable () -> Void
        /// This process was restored from a dump: reopen, reconnect.
        public var didRestore: @Sendable () -> Void

        /// Creates hooks; each defaults to doing nothing.
        public init(
            willDump: @escaping @Sendable () throws -> Void = {},
            didContinue: @escaping @Sendable () -> Void = {},
            didRestore: @escaping @Sendable () -> Void = {}
        ) {
            self.willDump = willDump
            self.didContinue = didContinue
            self.didRestore = didRestore
        }
    }

    private let registered = Locked<[(name: String, hooks: Hooks)]>([])

    /// Creates an empty set of participants.
    public init() {}

    /// Registers a participant under a name (for logs and errors).
    public func register(_ name: String, _ hooks: Hooks) {
        registered.withLock { $0.append((name, hooks)) }
    }

    /// Removes a participant. Returns whether it was registered.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        registered.withLock { list in
            guard let index = list.firstIndex(where: { $0.name == name }) else { return false }
            list.remove(at: index)
            return true
        }
    }

    /// The registered names, in order.
    public var names: [String] { registered.withLock { $0.map(\.name) } }

    /// Runs `dump` between the participants' hooks.
    /// - Returns: `nil` when a `willDump` hook cancelled the dump (with the reason), else the outcome.
    func around(_ dump: () throws -> DumpOutcome) rethrows -> (outcome: DumpOutcome?, cancelledBy: String?) {
        let participants = registered.withLock { $0 }
        var quiesced: [Hooks] = []
        for participant in participants {
            do {
                try participant.hooks.willDump()
                quiesced.append(participant.hooks)
            } catch {
                for hooks in quiesced.reversed() { hooks.didContinue() }
                return (nil, "participant '\(participant.name)' refused the dump: \(error)")
            }
        }
        let outcome: DumpOutcome
        do { outcome = try dump() } catch {
            for hooks in quiesced.reversed() { hooks.didContinue() }
            throw error
        }
        for hooks in quiesced.reversed() {
            if outcome == .restored { hooks.didRestore() } else { hooks.didContinue() }
        }
        return (outcome, nil)
    }
}
