import CTextSegmentation
import Testing

@Suite struct WordBoundsTests {
    func words(_ text: String, capacity: Int? = nil) -> [String] {
        let units = Array(text.utf16)
        var bounds = [Int32](repeating: -1, count: capacity ?? 2 * max(units.count, 1))
        let count = units.withUnsafeBufferPointer { text in
            bounds.withUnsafeMutableBufferPointer { quiver_word_bounds(text.baseAddress, Int32(text.count), $0.baseAddress, $0.count) }
        }
        return (0..<max(count, 0)).map { String(decoding: units[Int(bounds[2 * $0])..<Int(bounds[2 * $0 + 1])], as: UTF16.self) }
    }

    @Test func dictionaryScriptsAndSpacedTextSplitIntoWords() {
        #expect(words("我爱北京天安门") == ["我", "爱", "北京", "天安门"])
        #expect(words("สวัสดีครับ") == ["สวัสดี", "ครับ"])
        // Spaces and punctuation are not words; numbers are.
        #expect(words("Hello, world! 42") == ["Hello", "world", "42"])
        #expect(words("") == [])
    }

    @Test func stopsAtCapacityWithoutWritingPastIt() {
        #expect(words("one two three", capacity: 4) == ["one", "two"])
        #expect(words("one two three", capacity: 1) == [])
    }
}
