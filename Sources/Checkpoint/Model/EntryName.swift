/// Rules for entry names.
///
/// A name is one or more components separated by `/` (nested state is saved under
/// `parent/child`). Each component is 1 or more ASCII letters, digits, `_`, `-` or `.`, and is not
/// `.` or `..`. The whole name is at most ``maximumLength`` bytes. Names never become paths, but
/// tools export entries to files named after them, so path tricks are refused up front.
public enum EntryName {
    /// The longest allowed name, in bytes.
    public static let maximumLength = 255

    /// Throws ``CheckpointError/Code/invalidName`` unless `name` follows the rules.
    public static func validate(_ name: String) throws(CheckpointError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { throw CheckpointError(.invalidName, "entry names must not be empty") }
        guard bytes.count <= maximumLength else {
            throw CheckpointError(
                .invalidName,
                "entry name is \(bytes.count) bytes; the limit is \(maximumLength): '\(PrintableText.escaped(String(name.prefix(40))))…'"
            )
        }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard !component.isEmpty else {
                throw CheckpointError(
                    .invalidName,
                    "entry name '\(PrintableText.escaped(name))' has an empty component (leading, trailing or double '/')"
                )
            }
            guard component.elementsEqual([0x2E]) == false, component.elementsEqual([0x2E, 0x2E]) == false else {
                throw CheckpointError(
                    .invalidName,
                    "entry name '\(PrintableText.escaped(name))' has a '.' or '..' component"
                )
            }
            for byte in component where !isAllowed(byte) {
                throw CheckpointError(
                    .invalidName,
                    "entry name '\(PrintableText.escaped(name))' contains \(describe(byte)); use ASCII letters, digits, '_', '-', '.' and '/'"
                )
            }
        }
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return "the byte 0x\(String(byte, radix: 16))"
    }
}
