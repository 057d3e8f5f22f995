import Foundation
import Testing
import VouchCore

extension TOMLNode {
    var stringValue: String? { if case .string(let v) = value { v } else { nil } }
    var intValue: Int64? { if case .integer(let v) = value { v } else { nil } }
    var doubleValue: Double? { if case .float(let v) = value { v } else { nil } }
    var boolValue: Bool? { if case .boolean(let v) = value { v } else { nil } }
    var arrayValue: [TOMLNode]? { if case .array(let v) = value { v } else { nil } }
    var tableValue: TOMLTable? { if case .table(let v) = value { v } else { nil } }
}

/// Follows table keys from `table`; nil when any step is missing or not a table.
func lookup(_ table: TOMLTable, _ path: String...) -> TOMLNode? {
    var t = table
    for (i, key) in path.enumerated() {
        guard let n = t[key] else { return nil }
        if i == path.count - 1 { return n }
        guard let next = n.tableValue else { return nil }
        t = next
    }
    return nil
}

@Suite struct TOMLStructureTests {
    @Test func tablesAndNestedTables() throws {
        let doc = try TOML.parse(
            """
            title = "top"
            [server]
            host = "a"
            [server.tls]
            cert = "c"
            [a.b.c]
            d = 1
            [a]
            e = 2
            """)
        #expect(doc.keys == ["title", "server", "a"])
        #expect(lookup(doc, "title")?.stringValue == "top")
        #expect(lookup(doc, "server", "host")?.stringValue == "a")
        #expect(lookup(doc, "server", "tls", "cert")?.stringValue == "c")
        #expect(lookup(doc, "a", "b", "c", "d")?.intValue == 1)
        // [a] may be defined after [a.b.c] created it implicitly.
        #expect(lookup(doc, "a", "e")?.intValue == 2)
        #expect(lookup(doc, "server")?.tableValue?.keys == ["host", "tls"])
    }

    @Test func arraysOfTablesAttachNestedArraysToTheLastElement() throws {
        let doc = try TOML.parse(
            """
            [[fruit]]
            name = "apple"
            [fruit.physical]
            color = "red"
            [[fruit.variety]]
            name = "red delicious"
            [[fruit.variety]]
            name = "granny smith"

            [[fruit]]
            name = "banana"
            [[fruit.variety]]
            name = "plantain"
            """)
        let fruits = try #require(lookup(doc, "fruit")?.arrayValue)
        try #require(fruits.count == 2)
        let apple = try #require(fruits[0].tableValue)
        let banana = try #require(fruits[1].tableValue)
        #expect(lookup(apple, "name")?.stringValue == "apple")
        #expect(lookup(apple, "physical", "color")?.stringValue == "red")
        #expect(lookup(apple, "variety")?.arrayValue?.compactMap { $0.tableValue.flatMap { lookup($0, "name")?.stringValue } } == ["red delicious", "granny smith"])
        #expect(lookup(banana, "name")?.stringValue == "banana")
        #expect(lookup(banana, "variety")?.arrayValue?.compactMap { $0.tableValue.flatMap { lookup($0, "name")?.stringValue } } == ["plantain"])
        #expect(lookup(banana, "physical") == nil)
    }

    @Test func threeLevelArraysOfTables() throws {
        let doc = try TOML.parse(
            """
            [[a.b]]
            n = 1
            [[a.b.c]]
            x = 1
            [[a.b]]
            n = 2
            [[a.b.c]]
            x = 2
            [[a.b.c]]
            x = 3
            """)
        let bs = try #require(lookup(doc, "a", "b")?.arrayValue)
        try #require(bs.count == 2)
        let first = try #require(bs[0].tableValue), second = try #require(bs[1].tableValue)
        #expect(lookup(first, "c")?.arrayValue?.compactMap { $0.tableValue.flatMap { lookup($0, "x")?.intValue } } == [1])
        #expect(lookup(second, "n")?.intValue == 2)
        #expect(lookup(second, "c")?.arrayValue?.compactMap { $0.tableValue.flatMap { lookup($0, "x")?.intValue } } == [2, 3])
    }

    @Test func dottedAndQuotedKeys() throws {
        let doc = try TOML.parse(
            """
            a.b.c = 1
            a.b.d = 2
            a . e = 3
            "quoted.key".x = 4
            site."google.com" = true
            'literal key' = 5
            [t]
            x.y = "z"
            """)
        #expect(lookup(doc, "a", "b", "c")?.intValue == 1)
        #expect(lookup(doc, "a", "b", "d")?.intValue == 2)
        #expect(lookup(doc, "a", "e")?.intValue == 3)
        #expect(lookup(doc, "quoted.key", "x")?.intValue == 4)
        #expect(lookup(doc, "site", "google.com")?.boolValue == true)
        #expect(lookup(doc, "literal key")?.intValue == 5)
        #expect(lookup(doc, "t", "x", "y")?.stringValue == "z")
    }

    @Test func inlineTables() throws {
        let doc = try TOML.parse(
            """
            point = { x = 1, y = -2, nested = { z = "s" }, d.e = true }
            empty = {}
            after = 3
            """)
        #expect(lookup(doc, "point", "x")?.intValue == 1)
        #expect(lookup(doc, "point", "y")?.intValue == -2)
        #expect(lookup(doc, "point", "nested", "z")?.stringValue == "s")
        #expect(lookup(doc, "point", "d", "e")?.boolValue == true)
        #expect(lookup(doc, "point")?.tableValue?.keys == ["x", "y", "nested", "d"])
        #expect(lookup(doc, "empty")?.tableValue?.keys == [])
        #expect(lookup(doc, "after")?.intValue == 3)
        #expect(doc.keys == ["point", "empty", "after"])
    }

    @Test func arraysAcrossLinesWithCommentsAndTrailingComma() throws {
        let doc = try TOML.parse(
            """
            ports = [
              8001, # first
              8002,
              # a comment line
              8003,
            ]
            nested = [ [1, 2], ["a", 'b'] ]
            empty = [ ]
            tables = [ { n = 1 }, { n = 2 } ]
            next = "after"
            """)
        #expect(lookup(doc, "ports")?.arrayValue?.compactMap(\.intValue) == [8001, 8002, 8003])
        let nested = try #require(lookup(doc, "nested")?.arrayValue)
        #expect(nested.count == 2)
        #expect(nested.first?.arrayValue?.compactMap(\.intValue) == [1, 2])
        #expect(nested.last?.arrayValue?.compactMap(\.stringValue) == ["a", "b"])
        #expect(lookup(doc, "empty")?.arrayValue?.isEmpty == true)
        #expect(lookup(doc, "tables")?.arrayValue?.compactMap { $0.tableValue.flatMap { lookup($0, "n")?.intValue } } == [1, 2])
        #expect(lookup(doc, "next")?.stringValue == "after")
    }

    @Test func commentsBlankLinesCRLFAndBOM() throws {
        let doc = try TOML.parse("\u{FEFF}# header comment\r\n\r\na = 1 # trailing\r\n[t] # table comment\r\nb = \"x#y\"\r\n")
        #expect(lookup(doc, "a")?.intValue == 1)
        #expect(lookup(doc, "t", "b")?.stringValue == "x#y")
    }
}

@Suite struct TOMLValueTests {
    @Test func basicStringsWithEscapes() throws {
        let doc = try TOML.parse(#"s = "tab\tnl\nquote\"back\\slash\u00E9\U0001F600\b\f\r""#)
        #expect(lookup(doc, "s")?.stringValue == "tab\tnl\nquote\"back\\slash\u{E9}\u{1F600}\u{08}\u{0C}\r")
    }

    @Test func literalStringsKeepBackslashes() throws {
        let doc = try TOML.parse(#"path = 'C:\Users\nodejs\templates'"# + "\n" + #"q = '<\i\c*\s*>'"#)
        #expect(lookup(doc, "path")?.stringValue == #"C:\Users\nodejs\templates"#)
        #expect(lookup(doc, "q")?.stringValue == #"<\i\c*\s*>"#)
    }

    @Test func multiLineBasicStrings() throws {
        let doc = try TOML.parse(
            #"""
            a = """
            Roses are red
            Violets are blue"""
            b = """\
                The quick \
                brown \

                fox."""
            c = """say "hi" \t"""
            d = 1
            """#)
        #expect(lookup(doc, "a")?.stringValue == "Roses are red\nViolets are blue")
        #expect(lookup(doc, "b")?.stringValue == "The quick brown fox.")
        #expect(lookup(doc, "c")?.stringValue == "say \"hi\" \t")
        #expect(lookup(doc, "d")?.intValue == 1)
    }

    @Test func multiLineLiteralStrings() throws {
        let doc = try TOML.parse(
            #"""
            re = '''I [dw]on't need \d{2} apples'''
            lines = '''
            The first newline is
            trimmed in raw strings.
            '''
            n = 2
            """#)
        #expect(lookup(doc, "re")?.stringValue == #"I [dw]on't need \d{2} apples"#)
        #expect(lookup(doc, "lines")?.stringValue == "The first newline is\ntrimmed in raw strings.\n")
        #expect(lookup(doc, "n")?.intValue == 2)
    }

    static let integerCases: [(String, Int64)] = [
        ("+99", 99), ("42", 42), ("0", 0), ("-17", -17), ("+0", 0), ("-0", 0), ("1_000", 1000), ("5_349_221", 5_349_221),
        ("0xDEADBEEF", 0xDEAD_BEEF), ("0xdead_beef", 0xDEAD_BEEF), ("0o755", 0o755), ("0o01234567", 0o01234567),
        ("0b11010110", 0b11010110), ("0b1_0", 2), ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
    ]

    @Test(arguments: integerCases)
    func integers(_ text: String, _ expected: Int64) throws {
        let doc = try TOML.parse("n = \(text)")
        #expect(lookup(doc, "n")?.intValue == expected, "\(text)")
    }

    static let floatCases: [(String, Double)] = [
        ("+1.0", 1.0), ("3.1415", 3.1415), ("-0.01", -0.01), ("5e+22", 5e22), ("1e06", 1e6), ("-2E-2", -2e-2),
        ("6.626e-34", 6.626e-34), ("224_617.445_991", 224_617.445_991), ("inf", .infinity), ("+inf", .infinity),
        ("-inf", -.infinity), ("0.5", 0.5), ("500.0", 500),
    ]

    @Test(arguments: floatCases)
    func floats(_ text: String, _ expected: Double) throws {
        let doc = try TOML.parse("x = \(text)")
        #expect(lookup(doc, "x")?.doubleValue == expected, "\(text)")
    }

    @Test(arguments: ["nan", "+nan", "-nan"])
    func nan(_ text: String) throws {
        let doc = try TOML.parse("x = \(text)")
        #expect(lookup(doc, "x")?.doubleValue?.isNaN == true)
    }

    @Test func booleans() throws {
        let doc = try TOML.parse("t = true\nf = false\nlist = [true,false]")
        #expect(lookup(doc, "t")?.boolValue == true)
        #expect(lookup(doc, "f")?.boolValue == false)
        #expect(lookup(doc, "list")?.arrayValue?.compactMap(\.boolValue) == [true, false])
    }

    @Test func valuesInsideArraysEndAtCommasAndBrackets() throws {
        let doc = try TOML.parse("a = [1,2.5,-3,inf]\nb = {x=1}")
        let a = try #require(lookup(doc, "a")?.arrayValue)
        #expect(a.count == 4)
        #expect(a[0].intValue == 1)
        #expect(a[1].doubleValue == 2.5)
        #expect(a[2].intValue == -3)
        #expect(a[3].doubleValue == .infinity)
        #expect(lookup(doc, "b", "x")?.intValue == 1)
    }
}

@Suite struct TOMLPositionTests {
    static let text = """
        # comment
        name = "x"
          port   =   8080
        [srv]
        inline = { a = 1, b = "two" }
        list = [
          "one",
            "two",
        ]
        [[dev]]
        k = true
        """

    @Test func keyAndValuePositionsOfPlainPairs() throws {
        let doc = try TOML.parse(Self.text)
        let name = try #require(lookup(doc, "name"))
        #expect(name.keyPosition == SourcePosition(line: 2, column: 1))
        #expect(name.position == SourcePosition(line: 2, column: 8))
        let port = try #require(lookup(doc, "port"))
        #expect(port.keyPosition == SourcePosition(line: 3, column: 3))
        #expect(port.position == SourcePosition(line: 3, column: 14))
        #expect(port.position == position(of: "8080", in: Self.text))
    }

    @Test func tablePositionIsItsHeader() throws {
        let doc = try TOML.parse(Self.text)
        #expect(lookup(doc, "srv")?.position == SourcePosition(line: 4, column: 1))
        let dev = try #require(lookup(doc, "dev")?.arrayValue?.first)
        #expect(dev.position == SourcePosition(line: 10, column: 1))
        #expect(lookup(dev.tableValue!, "k")?.position == SourcePosition(line: 11, column: 5))
    }

    @Test func positionsInsideInlineTablesAndArrays() throws {
        let doc = try TOML.parse(Self.text)
        let inline = try #require(lookup(doc, "srv", "inline"))
        #expect(inline.keyPosition == SourcePosition(line: 5, column: 1))
        #expect(inline.position == SourcePosition(line: 5, column: 10))
        let a = try #require(lookup(doc, "srv", "inline", "a"))
        #expect(a.keyPosition == position(of: "a = 1", in: Self.text))
        #expect(a.position == position(of: "1, b", in: Self.text))
        let b = try #require(lookup(doc, "srv", "inline", "b"))
        #expect(b.keyPosition == position(of: "b = ", in: Self.text))
        #expect(b.position == position(of: "\"two\" }", in: Self.text))
        let list = try #require(lookup(doc, "srv", "list"))
        #expect(list.position == SourcePosition(line: 6, column: 8))
        let items = try #require(list.arrayValue)
        #expect(items.map(\.position) == [SourcePosition(line: 7, column: 3), SourcePosition(line: 8, column: 5)])
    }

    @Test func positionsAfterAMultiLineStringCountItsLines() throws {
        let text = "a = \"\"\"\none\ntwo\"\"\"\n  b = 1\n"
        let doc = try TOML.parse(text)
        #expect(lookup(doc, "b")?.keyPosition == SourcePosition(line: 4, column: 3))
        #expect(lookup(doc, "b")?.position == SourcePosition(line: 4, column: 7))
    }

    @Test func positionsOfDottedKeysPointAtTheFirstKey() throws {
        let text = "x = 1\n  a.b = 2\n"
        let doc = try TOML.parse(text)
        #expect(lookup(doc, "a", "b")?.keyPosition == SourcePosition(line: 2, column: 3))
        #expect(lookup(doc, "a", "b")?.position == SourcePosition(line: 2, column: 9))
    }
}

@Suite struct TOMLErrorTests {
    @Test func duplicateKey() throws {
        let error = try #require(tomlError("a = 1\nb = 2\n  a = 3\n"))
        #expect(error.position == SourcePosition(line: 3, column: 3))
        #expect(error.message.contains("defined twice"))
        #expect(error.message.contains("1:1"))
        #expect(error.description.hasPrefix("3:3: "))
    }

    @Test func duplicateKeyInsideATable() throws {
        let text = "[t]\nx = 1\n[u]\nx = 1\n[t]\n"
        let error = try #require(tomlError(text))
        #expect(error.position == SourcePosition(line: 5, column: 1))
        #expect(error.message.contains("defined twice"))
        let dotted = try #require(tomlError("a.b = 1\na.b = 2"))
        #expect(dotted.position.line == 2)
        #expect(dotted.message.contains("a.b"))
    }

    @Test func tableDefinedTwice() throws {
        let error = try #require(tomlError("[a]\nx = 1\n\n[a]\ny = 2\n"))
        #expect(error.position == SourcePosition(line: 4, column: 1))
        #expect(error.message.contains("defined twice"))
        #expect(error.message.contains("1:1"))
    }

    @Test func missingEquals() throws {
        let error = try #require(tomlError("a = 1\nname \"x\"\n"))
        #expect(error.position == SourcePosition(line: 2, column: 6))
        #expect(error.message.contains("'='"))
        #expect(error.message.contains("name"))
    }

    @Test func unclosedString() throws {
        let error = try #require(tomlError("a = 1\nname = \"abc\nb = 2\n"))
        #expect(error.position == SourcePosition(line: 2, column: 8))
        #expect(error.message.contains("not closed"))
        let literal = try #require(tomlError("x = 'abc\n"))
        #expect(literal.position == SourcePosition(line: 1, column: 5))
        let multi = try #require(tomlError("a = 1\nx = \"\"\"abc\ndef\n"))
        #expect(multi.position == SourcePosition(line: 2, column: 5))
    }

    @Test(arguments: ["kW", "hello", "holding"])
    func bareWordValueSuggestsQuotes(_ word: String) throws {
        let error = try #require(tomlError("a = 1\nunit = \(word)\n"))
        #expect(error.position == SourcePosition(line: 2, column: 8))
        #expect(error.message.contains("quotes"))
        #expect(error.message.contains("\"\(word)\""))
    }

    // Bug: a bare word that starts with 'i' or 'n' goes to the number parser ("invalid number input"),
    // and one that starts with "true"/"false" is read as a boolean followed by junk; neither says to
    // quote the string. `register = input` is an easy mistake in a Vouch config.
    @Test(arguments: ["input", "none", "trueish", "falsey"])
    func bareWordStartingLikeANumberOrBooleanSuggestsQuotes(_ word: String) throws {
        let error = try #require(tomlError("a = 1\nregister = \(word)\n"))
        #expect(error.position == SourcePosition(line: 2, column: 12))
        #expect(error.message.contains("quotes"), "\(error)")
        #expect(error.message.contains("\"\(word)\""), "\(error)")
    }

    @Test(arguments: ["1__0", "1_", "1_.5", "1._5", "-1__0"])
    func underscoreNotBetweenDigits(_ number: String) throws {
        let error = try #require(tomlError("x = 1\nn = \(number)\n"))
        #expect(error.position == SourcePosition(line: 2, column: 5))
        #expect(error.message.contains("invalid number \(number)"))
    }

    @Test(arguments: ["012", "1.", ".5", "1.e5", "12abc", "0xZZ", "1e", "--1", "9223372036854775808", "0x8000000000000000"])
    func invalidNumbers(_ number: String) throws {
        let error = try #require(tomlError("n = \(number)"))
        #expect(error.position == SourcePosition(line: 1, column: 5))
        #expect(error.message.contains(number))
    }

    @Test(arguments: ["1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27 07:32:00"])
    func datesAreUnsupported(_ date: String) throws {
        let error = try #require(tomlError("a = 1\n  when = \(date)\n"))
        #expect(error.position == SourcePosition(line: 2, column: 10))
        #expect(error.message.contains("dates and times are not supported"))
        #expect(error.message.contains("\"06:00\""))
    }

    @Test func extendingAnInlineTableWithAHeader() throws {
        let error = try #require(tomlError("a = { x = 1 }\n[a.b]\ny = 2\n"))
        #expect(error.position == SourcePosition(line: 2, column: 1))
        #expect(error.message.contains("inline"))
        let redefined = try #require(tomlError("a = { x = 1 }\n\n[a]\n"))
        #expect(redefined.position == SourcePosition(line: 3, column: 1))
        #expect(redefined.message.contains("already defined"))
    }

    @Test func extendingAnInlineTableWithADottedKey() throws {
        let error = try #require(tomlError("a = { x = 1 }\n a.y = 2\n"))
        #expect(error.position == SourcePosition(line: 2, column: 2))
        #expect(error.message.contains("\"a\""))
    }

    @Test func arrayOfTablesOverAStaticArrayIsRefused() throws {
        let error = try #require(tomlError("a = [1, 2]\n[[a]]\n"))
        #expect(error.position == SourcePosition(line: 2, column: 1))
        let table = try #require(tomlError("[a]\n[[a]]\n"))
        #expect(table.position == SourcePosition(line: 2, column: 1))
    }

    @Test func keyThatIsAlreadyAValueCannotBeATable() throws {
        let error = try #require(tomlError("a = 1\n[a.b]\n"))
        #expect(error.position == SourcePosition(line: 2, column: 1))
        #expect(error.message.contains("\"a\""))
    }

    @Test func junkAfterAValueOrHeader() throws {
        let value = try #require(tomlError("a = 1 2\n"))
        #expect(value.position == SourcePosition(line: 1, column: 7))
        let header = try #require(tomlError("[a] b = 1\n"))
        #expect(header.position == SourcePosition(line: 1, column: 5))
    }

    @Test func unclosedArrayAndHeader() throws {
        let array = try #require(tomlError("x = 0\na = [1,\n2\n"))
        #expect(array.position.line >= 2)
        #expect(array.message.contains("']'"))
        let header = try #require(tomlError("[a\nb = 1\n"))
        #expect(header.position == SourcePosition(line: 1, column: 3))
        #expect(header.message.contains("]"))
    }

    @Test func invalidEscapes() throws {
        let error = try #require(tomlError(#"p = "C:\path""#))
        #expect(error.message.contains("escape"))
        let surrogate = try #require(tomlError(#"p = "\uD800""#))
        #expect(surrogate.message.contains("unicode"))
    }

    // Bug: `\u` is parsed with UInt32(_:radix:), which accepts a sign, so "\u+041" reads as "A".
    @Test(arguments: [#"s = "\u+041""#, #"s = "\U+0001F60""#])
    func unicodeEscapeRejectsASign(_ text: String) throws {
        let error = try #require(tomlError(text))
        #expect(error.message.contains("unicode"))
    }

    // Bug: the radix parse after "0x"/"0o"/"0b" accepts a sign, so "0x-1" is -1.
    @Test(arguments: ["0x-1", "0x+1", "0o-7", "0b-1"])
    func prefixedIntegerRejectsASign(_ number: String) throws {
        let error = try #require(tomlError("n = \(number)"))
        #expect(error.position == SourcePosition(line: 1, column: 5))
    }
}
