"""Aliases: create, rename, delete, list; every collection endpoint accepts an alias."""

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


@pytest.fixture
def client(node):
    c = node.client(timeout=10)
    for name in ["blue", "green"]:
        c.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    return c


def aliases(client):
    return sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases)


@pytest.mark.qdrant_client
def test_create_rename_delete(client, node, openapi):
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="stage")),
    ])
    assert aliases(client) == [("prod", "blue"), ("stage", "blue")]
    assert [a.alias_name for a in client.get_collection_aliases("blue").aliases] == ["prod", "stage"]
    assert client.get_collection_aliases("green").aliases == []

    client.update_collection_aliases(change_aliases_operations=[
        models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="stage", new_alias_name="qa")),
    ])
    assert aliases(client) == [("prod", "blue"), ("qa", "blue")]
    client.update_collection_aliases(change_aliases_operations=[
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="qa")),
    ])
    assert aliases(client) == [("prod", "blue")]
    for path in ["/aliases", "/collections/blue/aliases", "/collections/prod/aliases"]:
        r = openapi.validate(node.get(path))
        assert r.status_code == 200 and r.json()["result"]["aliases"] == [{"alias_name": "prod", "collection_name": "blue"}]


@pytest.mark.qdrant_client
def test_collection_endpoints_accept_an_alias(client, node):
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="green", alias_name="live")),
    ])
    assert client.collection_exists("live")
    assert client.get_collection("live").config == client.get_collection("green").config
    client.update_collection("live", optimizers_config=models.OptimizersConfigDiff(indexing_threshold=77))
    assert client.get_collection("green").config.optimizer_config.indexing_threshold == 77
    assert [a.alias_name for a in client.get_collection_aliases("live").aliases] == ["live"]


@pytest.mark.qdrant_client
def test_blue_green_switch_is_atomic(client):
    switch = lambda target: client.update_collection_aliases(change_aliases_operations=[
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name="prod")),
    ])
    switch("blue")  # first time: the alias does not exist yet
    switch("green")
    assert aliases(client) == [("prod", "green")]


@pytest.mark.qdrant_client
def test_failing_batch_changes_nothing(client):
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="prod")),
    ])
    with pytest.raises(UnexpectedResponse) as err:
        client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="prod")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="green", alias_name="new")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="missing", alias_name="x")),
        ])
    assert err.value.status_code == 404
    assert aliases(client) == [("prod", "blue")]


@pytest.mark.qdrant_client
def test_alias_and_collection_names_do_not_collide(client):
    with pytest.raises(UnexpectedResponse) as err:
        client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="green")),
        ])
    assert err.value.status_code == 409
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="prod")),
    ])
    with pytest.raises(UnexpectedResponse) as err:
        client.create_collection("prod", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    assert err.value.status_code == 400


@pytest.mark.qdrant_client
def test_deleting_a_collection_drops_its_aliases(client):
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="green", alias_name="next")),
    ])
    client.delete_collection("blue")
    assert aliases(client) == [("next", "green")]
    assert not client.collection_exists("prod")
