import Checkpoint
import Foundation

/// Where the tool writes: results to standard output, diagnostics to standard error.
///
/// Writes go straight to the file descriptors (no stdio buffering), so standard output, standard
/// error and the progress bar (``ProgressBar``) interleave in order.
enum Console {
    /// Writes one line of results to standard output.
    ///
    /// Control and other non-printable characters are escaped (``PrintableText/escaped(_:)``):
    /// lines quote names, paths and strings from files that anyone who can write the checkpoint
    /// directory controls, and none of them may reach the terminal raw.
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((PrintableText.escaped(text) + "\n").utf8))
    }

    /// Writes one line to standard error, escaped as ``line(_:)`` is.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((PrintableText.escaped(text) + "\n").utf8))
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
