import Foundation

/// Where the tool writes: results to standard output, diagnostics to standard error.
///
/// Writes go straight to the file descriptors (no stdio buffering), so standard output, standard
/// error and the progress bar (``ProgressBar``) interleave in order.
enum Console {
    /// Writes one line of results to standard output.
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes one line to standard error.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Writes `value` as pretty JSON with sorted keys to standard output.
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // JSON has no NaN or infinity (a diff's largest difference can be either).
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf",
            negativeInfinity: "-inf",
            nan: "nan"
        )
        FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
    }
}
