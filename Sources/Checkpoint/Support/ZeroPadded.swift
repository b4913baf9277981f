/// `value` in decimal, left-padded with zeros to at least `width` digits.
func zeroPadded(_ value: UInt64, width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
