"""The vendor's own Python sample from the model's documentation page, unchanged but for
where it reads its key, base URL and poll interval (environment variables), so it can run
against the simulator. Its create posts duration "5" to the legacy path."""

import os
import time

import requests

# Insert your AIML API Key instead of <YOUR_AIMLAPI_KEY>:
api_key = os.environ.get("AIMLAPI_KEY", "<YOUR_AIMLAPI_KEY>")
base_url = os.environ.get("SAMPLE_BASE_URL", "https://api.aimlapi.com/v2")
interval = float(os.environ.get("SAMPLE_INTERVAL", "15"))


# Creating and sending a video generation task to the server
def generate_video():
    url = f"{base_url}/generate/video/kling/generation"
    headers = {
        "Authorization": f"Bearer {api_key}",
    }

    data = {
        "model": "klingai/video-v2-6-pro-image-to-video",
        "prompt": "Mona Lisa puts on glasses with her hands.",
        "image_url": "https://s2-111386.kwimgs.com/bs2/mmu-aiplatform-temp/kling/20240620/1.jpeg",
        "duration": "5",
    }

    response = requests.post(url, json=data, headers=headers)

    if response.status_code >= 400:
        print(f"Error: {response.status_code} - {response.text}")
    else:
        response_data = response.json()
        return response_data


# Requesting the result of the task from the server using the generation_id
def get_video(gen_id):
    url = f"{base_url}/generate/video/kling/generation"
    params = {
        "generation_id": gen_id,
    }

    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    response = requests.get(url, params=params, headers=headers)
    return response.json()


def main():
    # Running video generation and getting a task id
    gen_response = generate_video()
    gen_id = gen_response.get("id")
    print("Generation ID:  ", gen_id)

    # Trying to retrieve the video from the server every 15 sec
    if gen_id:
        start_time = time.time()

        timeout = 1000
        while time.time() - start_time < timeout:
            response_data = get_video(gen_id)

            if response_data is None:
                print("Error: No response from API")
                break

            status = response_data.get("status")
            print("Status:", status)

            if status in ("waiting", "active", "queued", "generating"):
                print("Still waiting... Checking again in 15 seconds.")
                time.sleep(interval)
            else:
                print("Processing complete:/n", response_data)
                return response_data

        print("Timeout reached. Stopping.")
        return None


if __name__ == "__main__":
    main()
