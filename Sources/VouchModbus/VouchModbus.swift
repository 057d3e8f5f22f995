/// VouchModbus: Modbus acquisition through libmodbus, RTU and TCP.
///
/// Invariants:
/// - Only ``ModbusClient`` calls libmodbus, always on its own serial queue, never on the cooperative
///   thread pool; one client (one connection, one serial port) per ``ModbusBus``, owned by one
///   ``ModbusBusPoller``, so requests never race on a line.
/// - Every libmodbus failure becomes a ``ModbusError`` with the errno name; none escapes as a crash,
///   and the poller turns each into a comm-error ``VouchCore/Reading``. Polling never stops for good:
///   TCP reconnects, a vanished serial port is reopened, a silent unit is backed off.
/// - Every reading keeps the raw words it was decoded from. A value that cannot be represented
///   (NaN, ±inf, beyond Int64 after scaling) is a flagged error, never passed on as a number.
/// - ``RequestPlanner`` is pure and deterministic: the same channels give the same requests.
public enum VouchModbusInfo {}
