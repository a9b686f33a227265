"""Swagger UI at ``/docs``, driven as a person would (selenium): Authorize, "Try it out", Execute, read the answer.

Every wait is bounded. Screenshots go to ``artifacts_dir()/swagger-ui/`` with tokens masked first, so no
artifact holds a credential (passwords are typed into password fields and never shown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from ..browser import artifacts_dir

WAIT = 20.0  # seconds: the longest any single step may take (the page, a login, one request)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Replaces tokens (JWTs and the given strings) and typed passwords (in curl lines) in every text node, and hides
# every field that holds one.
MASK_SCRIPT = """
const secrets = arguments[0];
const typed = arguments[1];
const jwt = /eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*/g;
const mask = (text) => {
  let masked = text.replace(jwt, "[token]");
  for (const secret of secrets) { masked = masked.split(secret).join("[token]"); }
  for (const secret of typed) { masked = masked.split("password=" + secret).join("password=[password]"); }
  return masked;
};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const masked = mask(node.nodeValue);
  if (masked !== node.nodeValue) { node.nodeValue = masked; }
}
for (const field of document.querySelectorAll("input, textarea")) {
  if (mask(field.value) !== field.value || typed.some((secret) => field.value.includes(secret))) {
    field.style.webkitTextSecurity = "disc";
  }
}
"""


@dataclass(frozen=True)
class Answer:
    """What Swagger UI shows under "Server response" after Execute."""

    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class SwaggerUI:
    """One ``/docs`` page in one browser."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.secrets: list[str] = []  # tokens read from the page, which screenshots must not show
        self.typed_secrets: list[str] = []  # passwords typed into request bodies, hidden in their fields
        self.shots = artifacts_dir() / "swagger-ui"
        self.shots.mkdir(parents=True, exist_ok=True)

    def wait(self, timeout: float = WAIT) -> WebDriverWait[Any]:
        return WebDriverWait(self.driver, timeout)

    def open(self) -> None:
        self.driver.get(self.base_url + "/docs")
        self.wait().until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))

    def screenshot(self, name: str) -> Path:
        self.driver.execute_script(MASK_SCRIPT, self.secrets, self.typed_secrets)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def click(self, element: WebElement) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        self.wait().until(ec.element_to_be_clickable(element))
        element.click()

    # Authorize

    def authorize_password(self, username: str, password: str) -> None:
        """Authorize, the password flow's form (client id and secret left empty), Authorize; waits till authorized."""
        self.click(self.driver.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize"))
        self.wait().until(ec.visibility_of_element_located((By.ID, "oauth_username"))).send_keys(username)
        self.driver.find_element(By.ID, "oauth_password").send_keys(password)
        self.click(self.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Apply given OAuth2 credentials']"))
        logout = (By.CSS_SELECTOR, "button[aria-label='Remove authorization']")
        self.wait().until(ec.presence_of_element_located(logout))

    def auth_errors(self) -> list[str]:
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, ".modal-ux .errors")]

    def close_dialog(self) -> None:
        self.click(self.driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-container:last-child button.btn-done"))
        self.wait().until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))

    def authorized(self) -> bool:
        """The page's Authorize button shows the locked padlock once a scheme is authorized."""
        button = self.driver.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize")
        return "locked" in (button.get_attribute("class") or "").split()

    # Try it out → Execute

    def operation(self, tag: str, operation_id: str) -> WebElement:
        block: WebElement = self.driver.find_element(By.ID, f"operations-{tag}-{operation_id}")
        if "is-open" not in (block.get_attribute("class") or "").split():
            self.click(block.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))
        button = self.wait().until(lambda _: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
        if "cancel" not in (button.get_attribute("class") or "").split():
            self.click(button)  # "Try it out" (once on, the same button reads "Cancel")
        return block

    def set_body(self, block: WebElement, body: dict[str, str]) -> None:
        """The request body editor (a JSON text area; Swagger UI sends it form-encoded)."""
        editor = block.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(json.dumps(body))

    def set_form_field(self, block: WebElement, name: str, value: str) -> None:
        row = block.find_element(By.CSS_SELECTOR, f"tr[data-property-name='{name}']")
        fields = row.find_elements(By.CSS_SELECTOR, "select")
        if fields:
            Select(fields[0]).select_by_value(value)
            return
        field = row.find_element(By.CSS_SELECTOR, "input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(value)

    def execute(self, block: WebElement) -> Answer:
        """Execute, wait for the server's answer and read its status and body as shown."""
        for clear in block.find_elements(By.CSS_SELECTOR, "button.btn-clear"):
            self.click(clear)  # the previous answer, so the next one is this request's
        self.wait().until_not(lambda _: block.find_elements(By.CSS_SELECTOR, ".live-responses-table"))
        self.click(block.find_element(By.CSS_SELECTOR, "button.execute"))
        table = self.wait().until(lambda _: block.find_element(By.CSS_SELECTOR, ".live-responses-table"))
        status = table.find_element(By.CSS_SELECTOR, "tr.response td.response-col_status").text.strip()
        bodies = table.find_elements(By.CSS_SELECTOR, ".response-col_description pre.microlight")
        return Answer(int(status), bodies[0].text if bodies else "")

    # What the page loaded

    def requests_off_loopback(self) -> list[str]:
        """Every URL the page fetched (documents, scripts, styles, images, XHR and fetch) whose host is not loopback."""
        urls: list[str] = self.driver.execute_script(
            "return [location.href, ...performance.getEntriesByType('resource').map((entry) => entry.name)];"
        )
        return [url for url in urls if urlsplit(url).scheme != "data" and urlsplit(url).hostname not in LOOPBACK_HOSTS]

    def resources(self) -> list[str]:
        """The paths of every resource the page loaded."""
        urls: list[str] = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map((entry) => entry.name);"
        )
        return [urlsplit(url).path for url in urls]
