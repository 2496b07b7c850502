import QuiverJSON
import QuiverModel
import Testing

func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try JSONValueDecoder().decode(type, from: Array(json.utf8))
}

func validationMessages(_ value: some Validatable) -> String? {
    do {
        _ = try value.validated()
        return nil
    } catch {
        return error.rendered
    }
}

@Suite struct VectorsConfigTests {
    @Test func singleVector() throws {
        let request = try decode(CreateCollection.self, #"{"vectors":{"size":4,"distance":"Cosine","on_disk":true,"datatype":"float16"}}"#)
        guard case .single(let params)? = request.vectors else {
            Issue.record("expected a single vector")
            return
        }
        #expect(params.size == 4)
        #expect(params.distance == .cosine)
        #expect(params.onDisk == true)
        #expect(params.datatype == .float16)
    }

    @Test func namedVectorsWithPerVectorConfig() throws {
        let request = try decode(CreateCollection.self, #"""
        {"vectors":{"image":{"size":512,"distance":"Dot","hnsw_config":{"m":32},
                    "quantization_config":{"scalar":{"type":"int8","quantile":0.99}},
                    "multivector_config":{"comparator":"max_sim"}},
                    "text":{"size":384,"distance":"Euclid"}}}
        """#)
        let all = try #require(request.vectors?.all)
        #expect(all.keys.sorted() == ["image", "text"])
        #expect(all["image"]?.hnswConfig?.m == 32)
        #expect(all["image"]?.quantizationConfig == .scalar(ScalarQuantizationConfig(type: .int8, quantile: 0.99)))
        #expect(all["image"]?.multivectorConfig?.comparator == .maxSim)
    }

    @Test func emptyMapMeansNoDenseVectors() throws {
        let request = try decode(CreateCollection.self, #"{"vectors":{},"sparse_vectors":{"bm25":{"modifier":"idf"}}}"#)
        #expect(request.vectors == .named([:]))
        #expect(request.sparseVectors?["bm25"]?.modifier == .idf)
    }

    @Test func validationNamesEveryBadField() throws {
        let request = try decode(CreateCollection.self, #"""
        {"vectors":{"a":{"size":0,"distance":"Dot"},"b/c":{"size":70000,"distance":"Dot"}},
         "shard_number":0,"hnsw_config":{"ef_construct":2},"optimizers_config":{"deleted_threshold":1.5},
         "wal_config":{"wal_capacity_mb":0},"quantization_config":{"scalar":{"type":"int8","quantile":0.1}}}
        """#)
        #expect(validationMessages(request) == "[vectors.a.size: value 0 invalid, must be from 1 to 65536; "
            + "vectors.b/c: vector name cannot contain \"/\" char; vectors.b/c.size: value 70000 invalid, must be from 1 to 65536; "
            + "shard_number: value 0 invalid, must be 1 or larger; hnsw_config.ef_construct: value 2 invalid, must be 4 or larger; "
            + "wal_config.wal_capacity_mb: value 0 invalid, must be 1 or larger; "
            + "optimizers_config.deleted_threshold: value 1.5 invalid, must be from 0.0 to 1.0; "
            + "quantization_config.scalar.quantile: value 0.1 invalid, must be from 0.5 to 1.0]")
    }

    @Test func shardNumbersAreBounded() throws {
        let request = try decode(CreateCollection.self, #"{"vectors":{"size":2,"distance":"Dot"},"shard_number":2147483648}"#)
        #expect(validationMessages(request) == "[shard_number: value 2147483648 invalid, must be 1000 or smaller]")
        #expect(validationMessages(try decode(CreateCollection.self, #"{"vectors":{"size":2,"distance":"Dot"},"shard_number":1000}"#)) == nil)
    }

    @Test func denseAndSparseNamesMustDiffer() throws {
        let request = try decode(CreateCollection.self, #"{"vectors":{"x":{"size":2,"distance":"Dot"},"b":{"size":2,"distance":"Dot"}},"sparse_vectors":{"x":{},"b":{}}}"#)
        #expect(validationMessages(request) == nil)
        #expect(request.vectorNamesProblem == "Dense and sparse vector names must be unique - duplicate found with 'b'")
        let unnamed = try decode(CreateCollection.self, #"{"sparse_vectors":{"":{}}}"#)
        #expect(unnamed.vectorNamesProblem == "Sparse vector name cannot be empty")
    }

    @Test func quantizationNeedsExactlyOneMethod() {
        #expect(throws: JSONDecodingError.self) {
            try decode(QuantizationConfig.self, #"{"scalar":{"type":"int8"},"binary":{}}"#)
        }
        #expect(throws: JSONDecodingError.self) { try decode(QuantizationConfig.self, #"{}"#) }
        #expect(throws: JSONDecodingError.self) { try decode(QuantizationConfigDiff.self, #""Enabled""#) }
    }

    @Test func quantizationRoundTrips() throws {
        for json in [#"{"scalar":{"type":"int8","quantile":0.99,"always_ram":true}}"#,
                     #"{"product":{"compression":"x16"}}"#,
                     #"{"binary":{"encoding":"one_and_half_bits","query_encoding":"scalar8bits"}}"#,
                     #"{"turbo":{"bits":"bits4"}}"#] {
            let config = try decode(QuantizationConfig.self, json)
            #expect(String(decoding: try JSONValueEncoder().encodeBytes(config), as: UTF8.self) == json)
        }
    }

    @Test func initFromIsRejected() {
        #expect(throws: JSONDecodingError.self) {
            try decode(CreateCollection.self, #"{"init_from":{"collection":"x"}}"#)
        }
    }
}

@Suite struct EffectiveConfigTests {
    @Test func defaultsFillWhatTheRequestLeavesOut() throws {
        var defaults = CollectionDefaults()
        defaults.hnsw.m = 24
        defaults.vectorsOnDisk = true
        defaults.replicationFactor = 2
        let request = try decode(CreateCollection.self, #"{"vectors":{"size":8,"distance":"Dot"},"hnsw_config":{"ef_construct":64},"optimizers_config":{"indexing_threshold":0}}"#)
        let config = request.effectiveConfig(defaults: defaults)
        #expect(config.hnswConfig.m == 24)
        #expect(config.hnswConfig.efConstruct == 64)
        #expect(config.optimizerConfig.indexingThreshold == 0)
        #expect(config.optimizerConfig.deletedThreshold == 0.2)
        #expect(config.params.vectors.params(named: "")?.onDisk == true)
        #expect(config.params.replicationFactor == 2)
        #expect(config.params.shardNumber == 1)
        #expect(config.walConfig == WalConfig())
        #expect(config.strictModeConfig?.enabled == false)
    }

    @Test func storedConfigRoundTrips() throws {
        let request = try decode(CreateCollection.self, #"""
        {"vectors":{"a":{"size":3,"distance":"Manhattan"}},"sparse_vectors":{"s":{"index":{"on_disk":true}}},
         "sharding_method":"custom","quantization_config":{"binary":{}},"strict_mode_config":{"enabled":true,"max_query_limit":10},
         "metadata":{"owner":"team-a","version":1.0,"tags":["x"]}}
        """#)
        let config = request.effectiveConfig(defaults: CollectionDefaults())
        let encoded = try JSONValueEncoder().encode(config)
        let decoded = try JSONValueDecoder().decode(CollectionConfig.self, from: encoded)
        #expect(decoded == config)
        #expect(JSONWriter.string(encoded).contains(#""metadata":{"owner":"team-a","version":1.0,"tags":["x"]}"#))
    }
}

@Suite struct UpdateCollectionTests {
    func baseConfig() throws -> CollectionConfig {
        try decode(CreateCollection.self, #"""
        {"vectors":{"a":{"size":3,"distance":"Dot"}},"sparse_vectors":{"s":{}},
         "quantization_config":{"scalar":{"type":"int8"}},"metadata":{"keep":1,"drop":2}}
        """#).effectiveConfig(defaults: CollectionDefaults())
    }

    @Test func appliesEverySection() throws {
        let update = try decode(UpdateCollection.self, #"""
        {"vectors":{"a":{"hnsw_config":{"m":8},"on_disk":true,"quantization_config":{"product":{"compression":"x4"}}}},
         "optimizers_config":{"indexing_threshold":500,"max_optimization_threads":"auto"},
         "params":{"replication_factor":3,"on_disk_payload":false},
         "hnsw_config":{"ef_construct":200},"quantization_config":"Disabled",
         "sparse_vectors":{"s":{"modifier":"idf"}},"strict_mode_config":{"max_timeout":5},
         "metadata":{"drop":null,"new":"x"}}
        """#)
        let updated = try baseConfig().applying(update)
        let a = try #require(updated.params.vectors.params(named: "a"))
        #expect(a.hnswConfig?.m == 8)
        #expect(a.onDisk == true)
        #expect(a.quantizationConfig == .product(ProductQuantizationConfig(compression: .x4)))
        #expect(updated.optimizerConfig.indexingThreshold == 500)
        #expect(updated.optimizerConfig.maxOptimizationThreads == nil)
        #expect(updated.params.replicationFactor == 3)
        #expect(updated.params.onDiskPayload == false)
        #expect(updated.hnswConfig.efConstruct == 200)
        #expect(updated.quantizationConfig == nil)
        #expect(updated.params.sparseVectors?["s"]?.modifier == .idf)
        #expect(updated.strictModeConfig?.maxTimeout == 5)
        #expect(updated.metadata == JSONObject([("keep", .int(1)), ("new", .string("x"))]))
    }

    @Test func unknownVectorNameIsRejected() throws {
        let update = try decode(UpdateCollection.self, #"{"vectors":{"zzz":{"on_disk":true}}}"#)
        #expect(throws: UpdateRejection(message: "Not existing vector name error: zzz")) {
            try baseConfig().applying(update)
        }
    }
}

@Suite struct NameAndAliasTests {
    @Test(arguments: ["ok", "with space", "ünïcødé", "dots.and-dashes_1"])
    func acceptsNames(name: String) {
        #expect(NameRules.collectionNameProblem(name) == nil)
    }

    @Test(arguments: ["", "a/b", "a:b", "a*b", "a?b", "..", ".", String(repeating: "x", count: 256)])
    func rejectsNames(name: String) {
        #expect(NameRules.collectionNameProblem(name) != nil)
    }

    @Test func decodesAliasActions() throws {
        let op = try decode(ChangeAliasesOperation.self, #"""
        {"actions":[{"create_alias":{"collection_name":"c","alias_name":"a"}},
                    {"rename_alias":{"old_alias_name":"a","new_alias_name":"b"}},
                    {"delete_alias":{"alias_name":"b"}}]}
        """#)
        #expect(op.actions == [.create(collectionName: "c", aliasName: "a"), .rename(oldAliasName: "a", newAliasName: "b"), .delete(aliasName: "b")])
        #expect(throws: JSONDecodingError.self) { try decode(ChangeAliasesOperation.self, #"{"actions":[{"make_alias":{}}]}"#) }
        let bad = ChangeAliasesOperation(actions: [.create(collectionName: "c", aliasName: "a/b")])
        #expect(validationMessages(bad) == #"[actions[0].create_alias.alias_name: alias name cannot contain "/" char]"#)
    }
}
