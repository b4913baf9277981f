extension Checkpointer.Configuration {
    /// Who besides you may write the directories checkpoints are written into and restored from.
    ///
    /// Whoever can write a checkpoint directory can plant a checkpoint in it, which a restart then
    /// resumes from, or replace one. So every directory the checkpointer uses (the checkpoint
    /// directory, and with redundancy the node-local directory and each rank's folder in it) must be
    /// owned by the user the process runs as (or by root and writable by no one else), and must not
    /// be writable by other users, with or without the sticky bit: the sticky bit keeps others from
    /// removing or renaming your entries, not from creating new ones. Directories the checkpointer
    /// creates get ``Checkpointer/Configuration/directoryPermissions`` (owner only by default).
    ///
    /// ```swift
    /// configuration.directorySharing = .group
    /// ```
    ///
    /// A directory that fails the check is refused with ``CheckpointError/Code/invalidConfiguration``
    /// and a message naming the fix (`chmod go-w DIR`, or a private directory). See
    /// `Documentation/Security.md`.
    public struct DirectorySharing: Sendable, Hashable, CustomStringConvertible {
        enum Value: Sendable, Hashable {
            case privateOnly
            case group
        }

        let value: Value

        /// Only the owner may write the directories (the default): a directory writable by its
        /// group or by others is refused.
        public static let privateOnly = DirectorySharing(value: .privateOnly)

        /// The directories may also be writable by their group, when this process's user belongs to
        /// that group: for a project directory shared on purpose, whose members are trusted with
        /// the checkpoints. A directory writable by every user is still refused, and so is one
        /// owned by another user.
        public static let group = DirectorySharing(value: .group)

        /// Whether a directory writable by its group is accepted.
        var allowsGroup: Bool { value == .group }

        /// `"private"` or `"group"`.
        public var description: String {
            switch value {
            case .privateOnly: "private"
            case .group: "group"
            }
        }

        init(value: Value) { self.value = value }
    }
}
