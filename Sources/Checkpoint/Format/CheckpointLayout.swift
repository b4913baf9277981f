/// The names of the on-disk layout of a checkpoint directory (see Documentation/FileFormat.md).
///
/// ```
/// DIR/
///   ckpt-000000001200/          a committed checkpoint (step 1200)
///     manifest.json             written last (then its checksum, the commit marker of marker stores)
///     manifest.json.sha256
///     rank-00000.snap …         one shard per rank
///     dumps/rank-00000.json     process-dump records; images/rank-00000/ their images
///   .ckpt-000000001300.<pid>.<random>.tmp/   in flight, or left by a crash
/// ```
enum CheckpointLayout {
    static let committedPrefix = "ckpt-"
    static let temporaryPrefix = ".ckpt-"
    static let temporarySuffix = ".tmp"
    static let dumpsFolder = "dumps"

    /// `ckpt-` and the step, zero-padded to 12 digits.
    static func committedName(_ step: Step) -> String { committedPrefix + zeroPadded(step.rawValue, width: 12) }

    /// The step of a committed directory's name, or `nil` for any other name. Only the canonical
    /// spelling counts (`ckpt-` and at least 12 digits, zero-padded), so no step is seen twice.
    static func step(ofCommitted name: String) -> Step? {
        guard name.hasPrefix(committedPrefix) else { return nil }
        let digits = name.dropFirst(committedPrefix.count)
        guard digits.count >= 12, digits.count <= 20, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }),
            let number = UInt64(digits)
        else { return nil }
        let step = Step(rawValue: number)
        return committedName(step) == name ? step : nil
    }

    /// Whether `name` is a temporary directory's name.
    static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(temporaryPrefix) && name.hasSuffix(temporarySuffix)
    }

    /// The shard file name of a rank, e.g. `rank-00003.snap`.
    static func shardFileName(rank: Int) -> String { "rank-" + zeroPadded(UInt64(rank), width: 5) + ".snap" }

    /// The images directory of a rank's process dump, relative to the checkpoint directory.
    static func imagesFolder(rank: Int) -> String { "images/rank-" + zeroPadded(UInt64(rank), width: 5) }

    /// The dump record of a rank, relative to the checkpoint directory.
    static func dumpRecordFile(rank: Int) -> String {
        dumpsFolder + "/rank-" + zeroPadded(UInt64(rank), width: 5) + ".json"
    }
}
