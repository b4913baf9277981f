/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
enum HTML {
    /// `a<b & "c"` → `a&lt;b &amp; &quot;c&quot;`.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default:
                // Control characters have no business in a page; show them as the replacement character.
                if character.value < 0x20 && character != "\n" && character != "\t" {
                    escaped += "\u{FFFD}"
                } else {
                    escaped.unicodeScalars.append(character)
                }
            }
        }
        return escaped
    }
}
