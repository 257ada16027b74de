// Healthcheck for the HAPI FHIR container in deploy/compose.yaml. The hapiproject/hapi image is
// distroless (no shell, curl or wget) but its Java runtime runs a single source file directly
// (`java FhirReady.java URL`): exit 0 when URL answers 200 with a CapabilityStatement, else 1.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class FhirReady {
    public static void main(String[] args) {
        String url = args.length > 0 ? args[0] : "http://127.0.0.1:8080/fhir/metadata";
        try {
            HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
            HttpRequest request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .header("Accept", "application/fhir+json")
                .build();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            boolean ready = response.statusCode() == 200
                && response.body().contains("\"CapabilityStatement\"");
            System.out.println(url + ": HTTP " + response.statusCode() + (ready ? " ready" : " not ready"));
            System.exit(ready ? 0 : 1);
        } catch (Exception e) {
            System.out.println(url + ": " + e.getClass().getSimpleName());
            System.exit(1);
        }
    }
}
