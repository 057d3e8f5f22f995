/// VouchModbus: Modbus acquisition through libmodbus.
///
/// Invariants:
/// - Only ``ModbusTCPClient`` calls libmodbus, always on its own serial queue, never on the
///   cooperative thread pool.
/// - Every libmodbus failure becomes a ``ModbusError`` with the errno name; none escapes as a crash,
///   and the poller turns each into a comm-error ``VouchCore/Reading``.
public enum VouchModbusInfo {}
