import Hummingbird
import QuiverJSON
import QuiverModel
import QuiverService

/// Collections and aliases.
extension Routes {
    func addCollectionRoutes(to router: Router<BasicRequestContext>) {
        router.get("/collections") { _, _ in
            await respond { () async throws(ServiceError) in await service.listCollections() }
        }
        router.get("/collections/:name") { _, context in
            await respond { () async throws(ServiceError) in try await service.getCollection(collectionName(context)) }
        }
        router.get("/collections/:name/exists") { _, context in
            await respond { () async throws(ServiceError) in try await service.collectionExists(collectionName(context)) }
        }
        router.put("/collections/:name") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(CreateCollection.self, limitBytes: bodyLimit)
                return try await service.createCollection(context.parameters.decoded("name"), body, timeout: timeout)
            }
        }
        router.patch("/collections/:name") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(UpdateCollection.self, limitBytes: bodyLimit)
                return try await service.updateCollection(collectionName(context), body, timeout: timeout)
            }
        }
        router.put("/collections/:name/vectors/:vector") { request, context in
            var request = request
            return await respond { () async throws(ServiceError) in
                let (wait, timeout) = (try request.updateParameters().wait, try request.timeoutSeconds())
                let body = try await request.parseJSON(limitBytes: bodyLimit)
                let vector = try Self.read { () throws(JSONDecodingError) in try PointsJSON.namedVectorConfig(body) }
                return try await service.setNamedVector(collectionName(context), context.parameters.decoded("vector"), vector, wait: wait, timeout: timeout)
            }
        }
        router.delete("/collections/:name/vectors/:vector") { request, context in
            await respond { () async throws(ServiceError) in
                let (wait, timeout) = (try request.updateParameters().wait, try request.timeoutSeconds())
                return try await service.setNamedVector(collectionName(context), context.parameters.decoded("vector"), nil, wait: wait, timeout: timeout)
            }
        }
        router.delete("/collections/:name") { request, context in
            await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                return try await service.deleteCollection(collectionName(context), timeout: timeout)
            }
        }
        router.post("/collections/aliases") { request, _ in
            var request = request
            return await respond { () async throws(ServiceError) in
                let timeout = try request.timeoutSeconds()
                let body = try await request.decodeJSON(ChangeAliasesOperation.self, limitBytes: bodyLimit)
                return try await service.updateAliases(body, timeout: timeout)
            }
        }
        router.get("/aliases") { _, _ in
            await respond { () async throws(ServiceError) in await service.listAliases() }
        }
        router.get("/collections/:name/aliases") { _, context in
            await respond { () async throws(ServiceError) in try await service.collectionAliases(collectionName(context)) }
        }
    }
}
