import { ApiException, type KubeConfig } from "@kubernetes/client-node";
import { request, type RequestOptions } from "node:https";

/**
 * One raw JSON request to the apiserver with the kubeconfig's credentials. Raw on purpose: client-node's
 * models drop fields they do not know by their wire name (e.g. `x-kubernetes-list-type` in a CRD),
 * which would silently change what is applied. Errors are client-node's ApiException.
 */
export async function kubeRequest<T>(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("the kubeconfig has no current cluster");
  const url = new URL(path, server);
  const options: RequestOptions = { method, headers: { accept: "application/json", "content-type": contentType } };
  await kc.applyToHTTPSOptions(options);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(url, options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve((text ? JSON.parse(text) : undefined) as T);
        else reject(new ApiException(code, `${method} ${path}`, text, res.headers as Record<string, string>));
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}
