import Testing

@testable import Checkpoint

@Suite("Step")
struct StepTests {
    @Test("Steps compare with Int values, not only literals")
    func comparisons() {
        let step: Step = 12
        let limit = 10
        #expect(step > limit && step >= limit && !(step < limit) && !(step <= limit))
        #expect(limit < step && limit <= step && !(limit > step))
        #expect(step == 12 && step != limit && 12 == step)
        let negative = -1
        #expect(step > negative && !(step == negative) && !(step < negative) && negative < step)
        #expect(Step(0) >= 0 && !(Step(0) < 0))
    }

    @Test("Arithmetic with Int and conversion to Int")
    func arithmetic() {
        var step: Step = 10
        let offset = 5
        #expect(step + offset == Step(15))
        #expect(offset + step == Step(15))
        #expect(step - offset == Step(5))
        #expect(step + -offset == Step(5))
        #expect(step - -offset == Step(15))
        #expect(Step(15) - step == 5)
        #expect(step - Step(15) == -5)
        step += offset
        step -= 2
        #expect(step == 13)
        #expect(Int(step) == 13)
        #expect(Int(exactly: step) == 13)
        #expect(Int(exactly: Step(rawValue: .max)) == nil)
        #expect(Step(exactly: 7) == Step(7))
        #expect(Step(exactly: -1) == nil)
        let total = 100
        let remaining = total - Int(step)
        #expect(remaining == 87)
    }

    @Test("A step that would become negative stops with a clear message")
    func negativeResult() async {
        await #expect(processExitsWith: .failure) {
            let step: Step = 3
            _ = step - 4
        }
        await #expect(processExitsWith: .failure) {
            let negative = Int("-1") ?? 0
            _ = Step(negative)
        }
    }
}
