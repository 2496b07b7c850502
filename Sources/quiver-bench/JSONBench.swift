import Foundation
import QuiverJSON
import VectorIndex

/// `quiver-bench json`: how fast the server's JSON parser reads an upsert body of 1,000 points of
/// 128 floats, written as clients write them: 17 significant digits (a float32 widened to a
/// double, as Python's `json` prints it) and the float32's own shortest form (as orjson prints
/// it), next to `strtod` over the same numbers.
func runJSONBench() throws {
    var rng = SplitMix(seed: 1)
    let floats = (0..<128_000).map { _ in Float(Double(rng.next() % 2_000_001) / 1_000_000 - 1) }
    for (label, text) in [("17 digits", { (x: Float) in Double(x).description }), ("shortest float32", { (x: Float) in x.description })] {
        let numbers = floats.map(text)
        var body = "{\"points\":["
        for point in 0..<1000 {
            if point > 0 { body += "," }
            body += "{\"id\":\(point),\"vector\":[" + numbers[(point * 128)..<((point + 1) * 128)].joined(separator: ",") + "]}"
        }
        body += "]}"
        let bytes = Array(body.utf8)
        var best = Double.infinity
        for _ in 0..<20 {
            let t = now()
            _ = try bytes.withUnsafeBufferPointer { try JSONParser.parse($0) }
            best = min(best, now() - t)
        }
        var bestStrtod = Double.infinity
        for _ in 0..<5 {
            let t = now()
            var sum = 0.0
            for number in numbers { sum += number.withCString { strtod($0, nil) } }
            bestStrtod = min(bestStrtod, now() - t)
            if sum.isNaN { log("") }
        }
        log(String(format: "%@: %.1f MB body parsed in %.2f ms (%.0f MB/s, %.1f ns per number); strtod alone: %.1f ns per number",
                   label, Double(bytes.count) / 1e6, best * 1000, Double(bytes.count) / best / 1e6, best / Double(numbers.count) * 1e9,
                   bestStrtod / Double(numbers.count) * 1e9))
    }
}
