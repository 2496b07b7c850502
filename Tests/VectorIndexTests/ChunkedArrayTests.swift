import Testing
import VectorIndex

@Suite struct ChunkedArrayTests {
    /// Elements across chunk boundaries read back as written, and a copy keeps its own values
    /// when the original changes (a search holding a segment's flags sees them as they were).
    @Test func copiesAreIndependentAcrossChunks() {
        let count = 3 * 16_384 + 5
        let values = (0..<count).map { UInt64($0) &* 2_654_435_761 }
        var array = ChunkedArray(values)
        #expect(array.count == count && Array(array) == values)
        let copy = array
        for i in [0, 16_383, 16_384, 32_768, count - 1] { array[i] = 7 }
        #expect(Array(copy) == values)
        #expect(array[16_384] == 7 && array[16_385] == values[16_385] && array[count - 1] == 7)
        var flags = ChunkedArray(repeating: false, count: count)
        flags[count - 1] = true
        #expect(flags.filter { $0 }.count == 1 && ChunkedArray<Bool>([]).isEmpty)
    }
}
