/// Makes text that came from a file safe to show on a terminal, in a log or in an error message.
///
/// Entry names, paths, manifest strings and dump records are read from files anyone who can write
/// the checkpoint directory controls. Printed raw, a control character can move the cursor,
/// rewrite earlier lines, change the terminal's title or hide text (a NUL, an escape sequence,
/// a right-to-left override). Every human-readable output of the library and of `ckpt` passes
/// such text through ``escaped(_:)``.
public enum PrintableText {
    /// `text` with every character a terminal would not simply print replaced by a visible escape.
    ///
    /// Newline, carriage return and tab become `\n`, `\r` and `\t`; every other control character,
    /// format character (zero-width and bidirectional controls such as U+202E), line or paragraph
    /// separator, private-use, surrogate or unassigned code point becomes `\u{XXXX}` (hexadecimal,
    /// as in Swift string literals). Printable text, including non-ASCII letters, is unchanged.
    ///
    /// - Parameter text: Text read from a file or taken from a name a file records.
    /// - Returns: The text, safe to print.
    /// - Complexity: O(*n*) in the number of Unicode scalars; text without anything to escape is
    ///   returned as it is.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return result
    }

    /// Whether a terminal could do anything with `scalar` but print it.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: true
        default: false
        }
    }
}
