from fastapi.testclient import TestClient

from ..conftest import bearer, login


def test_login_then_users_me(client: TestClient) -> None:
    token = login(client)
    response = client.get("/users/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "bob"
