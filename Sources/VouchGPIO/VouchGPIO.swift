/// VouchGPIO: GPIO acquisition through libgpiod, behind ``GPIOBackend``.
///
/// Invariants:
/// - Only `LibgpiodV1.swift` calls libgpiod; everything else sees ``GPIOBackend``, so a libgpiod 2.x
///   backend can be added without touching callers.
/// - Chips are found by label and lines by name; an error names what does exist (the chips, the
///   chip's line names, the consumer holding a busy line, the group a permission needs).
/// - Edge times are the kernel's timestamps, moved to CLOCK_BOOTTIME like every monotonic time in
///   Vouch's records.
/// - The signal state machines (``Debouncer``, ``EdgeContinuity``, …) are pure: fed edges and times,
///   deterministic, O(1) memory, the same code live and in tests with a fake chip.
public enum VouchGPIOInfo {}
