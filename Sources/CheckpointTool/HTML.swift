import Checkpoint

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
enum HTML {
    /// `a<b & "c"` → `a&lt;b &amp; &quot;c&quot;`; control and other non-printable characters
    /// first become visible escapes (`\u{1B}`, ``PrintableText/escaped(_:)``), as on the terminal.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in PrintableText.escaped(text).unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default:
                // Control characters were escaped visibly (`\u{1B}`) by `PrintableText` above.
                escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}
