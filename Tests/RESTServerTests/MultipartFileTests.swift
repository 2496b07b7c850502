@testable import RESTServer
import Testing

@Suite struct MultipartFileTests {
    static let boundary = "----b0undary"

    static func body(_ content: [UInt8], before other: Bool) -> [UInt8] {
        var text: [UInt8] = []
        if other {
            text += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot this\r\n".utf8)
        }
        text += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"x.snapshot\"\r\n".utf8)
        text += Array("Content-Type: application/octet-stream\r\n\r\n".utf8)
        return text + content + Array("\r\n--\(boundary)--\r\n".utf8)
    }

    /// The `snapshot` part comes out whole, whatever the chunks the body arrives in, also when its
    /// content holds the delimiter's prefix and another part comes first.
    @Test(arguments: [false, true]) func theSnapshotPartSurvivesEverySplit(otherPartFirst: Bool) {
        let content = Array("data\r\n--\(Self.boundary.dropLast())x\r\n--".utf8) + (0..<300).map { UInt8($0 % 256) }
        let body = Self.body(content, before: otherPartFirst)
        for size in 1...body.count {
            var parser = MultipartFile(boundary: Self.boundary)
            var out: [UInt8] = []
            for start in stride(from: 0, to: body.count, by: size) {
                out += parser.feed(Array(body[start..<min(body.count, start + size)]))
            }
            #expect(parser.isDone && parser.problem == nil, "chunks of \(size)")
            #expect(out == content, "chunks of \(size)")
        }
    }

    @Test func bodiesItCannotReadAreNamed() {
        var noSnapshot = MultipartFile(boundary: Self.boundary)
        _ = noSnapshot.feed(Array("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--\(Self.boundary)--\r\n".utf8))
        #expect(noSnapshot.problem?.contains("no part named `snapshot`") == true)
        var endless = MultipartFile(boundary: Self.boundary)
        _ = endless.feed(Array("--\(Self.boundary)\r\n".utf8) + [UInt8](repeating: 65, count: 70_000))
        #expect(endless.problem?.contains("64 KiB") == true)
        #expect(MultipartFile.boundary("multipart/form-data; boundary=\"abc\"") == "abc")
        #expect(MultipartFile.boundary("application/json") == nil)
    }
}
