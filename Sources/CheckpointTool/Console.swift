import Foundation

/// Where the tool writes: results to standard output, diagnostics to standard error.
///
/// Writes go straight to the file descriptors (no stdio buffering), so progress lines appear as
/// they happen and standard output and standard error interleave in order.
enum Console {
    /// Writes one line of results to standard output.
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes one line to standard error.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Writes progress to standard error, only when a person is watching it.
    static func progress(_ text: String) {
        if isatty(2) != 0 { error(text) }
    }

    /// Writes `value` as pretty JSON with sorted keys to standard output.
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
    }
}
